/* Keyboard and layout helpers for the review pages (the stage page and all changed files).
 *
 * Progressive: every key only clicks a link, submits a form or scrolls to something that is on
 * the page without this script. No dependency; no inline script or style (CSP): sizes are set
 * through the CSSOM. Keys: j/k (or ]/[) file, n/p change, e expand, v viewed, t layout, w wrap,
 * / filter, s search, ? help, Esc.
 */
(function () {
  "use strict";

  var TREE_WIDTH_KEY = "greenroom.treeWidth";
  var CHANGE_ROWS = "tr.gr-added, tr.gr-removed, tr.gr-changed";

  function $(selector, root) { return (root || document).querySelector(selector); }
  function $$(selector, root) { return Array.prototype.slice.call((root || document).querySelectorAll(selector)); }

  function allFilesPage() { return !!$("#all-files"); }

  function scrollToEl(el) {
    el.scrollIntoView({ block: "start", behavior: "auto" });
  }

  function setFocus(el, cls) {
    $$("." + cls).forEach(function (other) { other.classList.remove(cls); });
    if (el) { el.classList.add(cls); }
  }

  // -- Files --------------------------------------------------------------------------------

  function treeLinks() { return $$("#tree a.gr-file-link"); }

  // The file a j/k press asked for, until its diff arrives: quick presses move on from it.
  var pendingPath = null;

  function currentTreeIndex(links) {
    var pane = $("#diff .file-pane");
    var path = pendingPath !== null ? pendingPath : pane ? pane.getAttribute("data-path") : null;
    for (var i = 0; i < links.length; i++) {
      var item = links[i].closest("li");
      if (path !== null && item && item.getAttribute("data-path") === path) { return i; }
    }
    for (var j = 0; j < links.length; j++) {
      if (links[j].getAttribute("aria-current")) { return j; }
    }
    return -1;
  }

  function markCurrentTreeLink(path) {
    treeLinks().forEach(function (link) {
      var item = link.closest("li");
      if (item && item.getAttribute("data-path") === path) {
        link.setAttribute("aria-current", "page");
      } else {
        link.removeAttribute("aria-current");
      }
    });
  }

  function fileBlocks() { return $$("details.all-file"); }

  function currentFileBlock() {
    var blocks = fileBlocks();
    var focused = $("details.all-file.gr-focus");
    if (focused) { return focused; }
    var current = null;
    blocks.forEach(function (block) {
      if (block.getBoundingClientRect().top <= 80) { current = block; }
    });
    return current || blocks[0] || null;
  }

  function moveFile(step) {
    if (allFilesPage()) {
      var blocks = fileBlocks();
      if (!blocks.length) { return; }
      var current = currentFileBlock();
      var index = blocks.indexOf(current);
      if (!$("details.all-file.gr-focus") && step > 0 && current.getBoundingClientRect().top > 80) {
        index -= 1;  // the reader has not reached this file yet: j goes to it
      }
      var next = blocks[Math.max(0, Math.min(blocks.length - 1, index + step))];
      setFocus(next, "gr-focus");
      scrollToEl(next);
      return;
    }
    var links = treeLinks();
    if (!links.length) { return; }
    var at = currentTreeIndex(links);
    var target = links[at < 0 ? 0 : Math.max(0, Math.min(links.length - 1, at + step))];
    if (target && (at < 0 || target !== links[at])) {
      var item = target.closest("li");
      pendingPath = item ? item.getAttribute("data-path") : null;
      target.click();
    }
  }

  // -- Changes ------------------------------------------------------------------------------

  function changeStarts() {
    // The first row of each run of changed rows, in page order.
    return $$(CHANGE_ROWS).filter(function (row) {
      if (!row.offsetParent) { return false; }  // in a collapsed file
      var before = row.previousElementSibling;
      return !(before && before.matches(CHANGE_ROWS));
    });
  }

  function moveChange(step) {
    var starts = changeStarts();
    if (!starts.length) { return; }
    var focused = $("tr.gr-focus");
    var index = focused ? starts.indexOf(focused) : -1;
    if (index < 0) {
      // From where the reader is: the first change below (or above) the top of the window.
      index = step > 0 ? -1 : starts.length;
      for (var i = 0; i < starts.length; i++) {
        if (starts[i].getBoundingClientRect().top > 60) { index = step > 0 ? i - 1 : i; break; }
      }
    }
    var next = starts[Math.max(0, Math.min(starts.length - 1, index + step))];
    setFocus(next, "gr-focus");
    next.scrollIntoView({ block: "center" });
  }

  // -- Actions on the current file ----------------------------------------------------------

  function currentPane() {
    if (allFilesPage()) {
      var block = currentFileBlock();
      return block ? $(".file-pane", block) : null;
    }
    return $("#diff .file-pane");
  }

  function expand() {
    if (allFilesPage()) {
      var block = currentFileBlock();
      if (block) { block.open = !block.open; }
      return;
    }
    var pane = currentPane();
    if (!pane) { return; }
    var focused = $("tr.gr-focus", pane);
    var gaps = $$("tr.gr-gap[hx-get]", pane);
    var gap = gaps[0];
    if (focused) {
      gap = gaps.filter(function (g) {
        return focused.compareDocumentPosition(g) & Node.DOCUMENT_POSITION_FOLLOWING;
      })[0] || gaps[gaps.length - 1];
    }
    if (gap) { gap.click(); }
  }

  function toggleViewed() {
    var pane = currentPane();
    var form = pane ? $("form.viewed-form", pane) : null;
    if (form) {
      if (form.requestSubmit) { form.requestSubmit(); } else { form.submit(); }
    }
  }

  function toggleLink(selector) {
    var pane = currentPane();
    if (!pane) { return; }
    var links = $$(selector + " a", pane).slice(0, 2);
    var other = links.filter(function (a) { return !a.classList.contains("current"); })[0];
    if (other) { other.click(); }
  }

  function focusField(selector) {
    var field = $(selector);
    if (field) { field.focus(); if (field.select) { field.select(); } }
  }

  function help() {
    var dialog = $("#keys-help");
    if (!dialog || !dialog.showModal) { return; }
    if (dialog.open) { dialog.close(); } else { dialog.showModal(); }
  }

  // -- Keys ---------------------------------------------------------------------------------

  var KEYS = {
    j: function () { moveFile(1); },
    k: function () { moveFile(-1); },
    "]": function () { moveFile(1); },
    "[": function () { moveFile(-1); },
    n: function () { moveChange(1); },
    p: function () { moveChange(-1); },
    e: expand,
    v: toggleViewed,
    t: function () { toggleLink(".layout-toggle"); },
    w: function () { toggleLink(".wrap-toggle"); },
    "/": function () { focusField($("#tree-q") ? "#tree-q" : "#diff-search-q"); },
    s: function () { focusField("#diff-search-q"); },
    "?": help
  };

  function typing(target) {
    if (!target || !target.closest) { return false; }
    return !!target.closest("input, textarea, select, [contenteditable=''], [contenteditable='true']");
  }

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey || event.defaultPrevented) { return; }
    if (event.key === "Escape" && typing(event.target)) { event.target.blur(); return; }
    if (typing(event.target)) { return; }
    var action = KEYS[event.key];
    if (!action) { return; }
    event.preventDefault();
    action();
  });

  // -- The tree column's width: dragged, remembered ----------------------------------------

  function restoreTreeWidth(column) {
    var saved = null;
    try { saved = window.localStorage.getItem(TREE_WIDTH_KEY); } catch (e) { saved = null; }
    var width = saved ? parseInt(saved, 10) : NaN;
    if (width >= 120 && width <= window.innerWidth * 0.6) { column.style.width = width + "px"; }
  }

  function saveTreeWidth(column) {
    try { window.localStorage.setItem(TREE_WIDTH_KEY, String(Math.round(column.getBoundingClientRect().width))); } catch (e) { /* private mode */ }
  }

  function setUpResizer() {
    var column = $("#review-tree-col");
    var handle = $("#review-resizer");
    var split = $("#review-split");
    if (!column || !handle || !split) { return; }
    restoreTreeWidth(column);
    handle.hidden = false;
    split.classList.add("js-resizer");
    var startX = 0;
    var startWidth = 0;
    function onMove(event) {
      var width = Math.max(120, Math.min(window.innerWidth * 0.6, startWidth + event.clientX - startX));
      column.style.width = width + "px";
    }
    function onUp() {
      handle.classList.remove("dragging");
      document.removeEventListener("pointermove", onMove);
      document.removeEventListener("pointerup", onUp);
      saveTreeWidth(column);
    }
    handle.addEventListener("pointerdown", function (event) {
      event.preventDefault();
      startX = event.clientX;
      startWidth = column.getBoundingClientRect().width;
      handle.classList.add("dragging");
      document.addEventListener("pointermove", onMove);
      document.addEventListener("pointerup", onUp);
    });
    handle.addEventListener("keydown", function (event) {
      var step = event.key === "ArrowLeft" ? -16 : event.key === "ArrowRight" ? 16 : 0;
      if (!step) { return; }
      event.preventDefault();
      var width = column.getBoundingClientRect().width + step;
      column.style.width = Math.max(120, Math.min(window.innerWidth * 0.6, width)) + "px";
      saveTreeWidth(column);
    });
  }

  // -- Soft wrap: mark the lines that wrapped -----------------------------------------------

  function markWrapped(root) {
    $$(".gr-wrap-soft td.gr-code", root).forEach(function (cell) {
      var lineHeight = parseFloat(window.getComputedStyle(cell).lineHeight) || 18;
      cell.classList.toggle("gr-wrapped", cell.clientHeight > lineHeight * 1.6);
    });
  }

  // -- Start --------------------------------------------------------------------------------

  function start() {
    setUpResizer();
    markWrapped(document);
    var button = $("#keys-help-button");
    if (button) { button.hidden = false; button.addEventListener("click", help); }
    document.body.addEventListener("htmx:afterSwap", function (event) {
      var pane = $(".file-pane", event.target) || (event.target.matches && event.target.matches(".file-pane") ? event.target : null);
      if (pane && event.target.id === "diff") {
        var path = pane.getAttribute("data-path");
        if (path === pendingPath) { pendingPath = null; }
        markCurrentTreeLink(path);
      }
      markWrapped(event.target);
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
