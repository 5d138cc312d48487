// Pre-selects the browser's time zone on a fresh form; the form works the same without scripts.
(function () {
  var select = document.getElementById("timezone");
  if (!select || select.getAttribute("data-browser-zone") !== "yes") return;
  var zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  for (var i = 0; i < select.options.length; i++) {
    if (select.options[i].value === zone) { select.selectedIndex = i; return; }
  }
})();
