// Varde: what a person has typed in a form survives a change of language
// (WCAG 3.3.7 Redundant Entry). A language link loads the page again in
// the other language; as it is followed, the values of the form fields in
// the page's main content are kept in sessionStorage (this tab only, under
// this page's path), and the page in the new language puts them back once
// and forgets them at once, so nothing typed stays in the browser and
// nothing goes into a URL. Hidden fields (the request, the CSRF token)
// come from the server; password fields are never kept. Without script a
// language link reloads the page with its fields empty, as before. No
// inline script: the page's CSP allows only files under /static.
(function () {
  "use strict";

  var store;
  try {
    store = window.sessionStorage;
  } catch (e) {
    return;
  }
  if (!store || !document.querySelectorAll) {
    return;
  }
  var key = "varde.lang.keep:" + location.pathname;

  function fields() {
    return document.querySelectorAll("main form input[name]:not([type=hidden]):not([type=password]):not([type=submit]):not([type=button]):not([type=file]), main form textarea[name], main form select[name]");
  }
  function name(f) {
    return (f.form.getAttribute("action") || "") + " " + f.name;
  }
  function each(fn) {
    var all = fields();
    for (var i = 0; i < all.length; i++) {
      fn(all[i]);
    }
  }

  var saved = null;
  try {
    saved = JSON.parse(store.getItem(key) || "null");
  } catch (e) {
    saved = null;
  }
  store.removeItem(key);
  if (saved && typeof saved === "object") {
    each(function (f) {
      var v = saved[name(f)];
      if (typeof v !== "string") {
        return;
      }
      if (f.type === "radio" || f.type === "checkbox") {
        f.checked = f.value === v;
      } else if (f.value === f.defaultValue) {
        f.value = v;
      }
    });
  }

  document.addEventListener("click", function (ev) {
    var a = ev.target && ev.target.closest ? ev.target.closest(".langs a[href]") : null;
    if (!a) {
      return;
    }
    var keep = {};
    var typed = false;
    each(function (f) {
      if (f.type === "radio" || f.type === "checkbox") {
        if (f.checked) {
          keep[name(f)] = f.value;
        }
        typed = typed || f.checked !== f.defaultChecked;
      } else if (f.value !== "") {
        keep[name(f)] = f.value;
        typed = typed || f.value !== f.defaultValue;
      }
    });
    if (typed) {
      try {
        store.setItem(key, JSON.stringify(keep));
      } catch (e) {
        // Storage full or refused: the page loads with its fields as the server sends them.
      }
    }
  });
})();
