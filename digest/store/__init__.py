"""All state, in SQLAlchemy: the models, the engine and its sessions, the schema's migrations, and
one module of queries per table. The only package that imports SQLAlchemy or Alembic."""
