"""``digest bench``: the speed of each stage and of the whole send, each figure beside a baseline
measured in the same run (data.py makes the inputs from the captured fixtures)."""
