/* Sync Console's few enhancements, in plain JavaScript. Every page works without them.
 *
 * - The menu: on wide screens it stays open where CSS alone cannot keep it so (browsers that
 *   do not know ::details-content); Escape closes it on small screens.
 * - The keys of a list marked data-keys (the errors list and the problems page): j and k move
 *   the selection through the rows, o opens the selected row (the link data-keys names), r
 *   resolves it (its data-resolve-url) with the same request and permission check as its
 *   Resolve button, ? shows the keys. Never while typing in a field, and never with Ctrl,
 *   Alt or Cmd held.
 */
(function () {
  "use strict";

  document.documentElement.classList.add("js");

  function onReady(callback) {
    if (document.readyState === "loading") {
      document.addEventListener("DOMContentLoaded", callback);
    } else {
      callback();
    }
  }

  function setUpMenu() {
    var menu = document.getElementById("menu");
    if (!menu) { return; }
    var wide = window.matchMedia("(min-width: 900px)");
    var cssKeepsItOpen = window.CSS && CSS.supports && CSS.supports("selector(::details-content)");
    if (!cssKeepsItOpen) {
      var follow = function () { menu.open = wide.matches; };
      follow();
      wide.addEventListener("change", follow);
    }
    document.addEventListener("keydown", function (event) {
      if (event.key === "Escape" && menu.open && !wide.matches) {
        menu.open = false;
        menu.querySelector("summary").focus();
      }
    });
  }

  function isTyping(target) {
    if (!target || !target.closest) { return false; }
    return target.isContentEditable ||
      Boolean(target.closest("input, textarea, select, [contenteditable]:not([contenteditable=false])"));
  }

  function setUpListKeys() {
    var list = document.querySelector("table[data-keys]");
    if (!list) { return; }
    var rows = Array.prototype.slice.call(list.querySelectorAll("tbody tr[data-row]"));
    // data-keys names the link of a row that "o" opens.
    var opens = list.getAttribute("data-keys") || "a";
    var help = document.getElementById("keys-help");
    var status = document.getElementById("keys-status");
    var resolveForm = document.getElementById("resolve-form");
    var current = -1;

    Array.prototype.forEach.call(document.querySelectorAll("[data-show-keys]"), function (button) {
      button.hidden = false;
      button.addEventListener("click", showHelp);
    });

    function say(text) {
      if (status) { status.textContent = text; }
    }

    function mark(index) {
      if (current >= 0 && rows[current]) { rows[current].classList.remove("selected"); }
      current = index;
      rows[current].classList.add("selected");
    }

    function select(index) {
      if (!rows.length) { return; }
      mark(Math.max(0, Math.min(rows.length - 1, index)));
      var row = rows[current];
      var link = row.querySelector(opens);
      // The row's link takes the focus, so a screen reader reads the row that was reached.
      if (link) { link.focus({preventScroll: true}); }
      row.scrollIntoView({block: "nearest"});
    }

    function open() {
      if (current < 0) { say("Select a row first with j or k."); return; }
      var link = rows[current].querySelector(opens);
      if (link) { link.click(); }
    }

    function resolve() {
      if (current < 0) { say("Select a row first with j or k."); return; }
      var url = rows[current].getAttribute("data-resolve-url");
      if (!url || !resolveForm) { say("This row is resolved already."); return; }
      say("Resolving…");
      resolveForm.action = url;
      resolveForm.submit();
    }

    function showHelp() {
      if (help && !help.open) { help.showModal(); }
    }

    // Tabbing to a row's link selects that row too.
    list.addEventListener("focusin", function (event) {
      var row = event.target.closest("tr[data-row]");
      var index = rows.indexOf(row);
      if (index >= 0 && index !== current) { mark(index); }
    });

    document.addEventListener("keydown", function (event) {
      if (event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey) { return; }
      if (isTyping(event.target) || (help && help.open)) { return; }
      var keys = {
        j: function () { select(current + 1); },
        k: function () { select(current < 0 ? 0 : current - 1); },
        o: open,
        r: resolve,
        "?": showHelp
      };
      var action = Object.prototype.hasOwnProperty.call(keys, event.key) ? keys[event.key] : null;
      if (!action) { return; }
      event.preventDefault();
      action();
    });
  }

  onReady(function () {
    setUpMenu();
    setUpListKeys();
  });
})();
