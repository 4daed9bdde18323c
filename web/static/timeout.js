// Varde: the warning before a time limit ends (WCAG 2.2 SC 2.2.1 Timing
// Adjustable; ADR 50): a session's idle timeout on the account pages,
// or a service's login request on the login pages. The page says in
// plain text how long it has; this script adds the warning. The page's
// one dialog.timeout carries, in data-* attributes:
//   data-ends-in     seconds left unless kept
//   data-warn        seconds before that to warn (at least 20 to answer)
//   data-extendable  "true" when keeping moves the end
//   data-keep        the URL that keeps it (POST, JSON, X-CSRF-Token)
//   data-keep-body   the JSON body to post ("{}" if absent)
//   data-keep-csrf   the token
//   data-status      the id of the polite live region for "kept"
//   data-title-*, data-msg-failed  texts, already in the page language
// Before the end it opens as a modal dialog (the browser moves the focus
// into it, keeps it there and gives it back on closing), whose one
// button keeps the session; the person then hears "still logged in" in
// a status region and the focus returns where it was. When the session
// cannot be kept any longer (its expiry is near) the dialog says so and
// when; once it has ended, or the server says it has, the dialog says
// so and offers to log in again, as it cannot be kept (a login request's
// dialog, which has no such link, says to start again from the service
// and offers Close). The time left is shown in the dialog but not
// announced each second. No inline script: the page's CSP allows only
// files under /static.
//
// Without script the page's own button (form.timeout-keep, beside the
// sentence that says until when) keeps the limit and loads the page
// again; with script this hides it, as the dialog keeps the limit
// without loading the page again, which would lose what was typed.
//
// A login's keep answers with the page's sentence about its end again
// (info), with the new end, which replaces the sentence on the page.
//
// Several tabs: a tab that keeps the limit, or loads a page under it,
// tells the other tabs of the same session or the same login request
// at once (a BroadcastChannel named by the dialog's id and its keep
// token, which differs from one session or login request to another),
// and they count from the new end and close an open warning. None asks
// the server: a question whether the session is live would itself keep
// it alive for ever (ADR 50).
(function () {
  "use strict";

  var dialog = document.querySelector("dialog.timeout[data-keep]");
  if (!dialog || typeof dialog.showModal !== "function" || !window.fetch) {
    // Without <dialog> the plain text on the page still says the limit.
    return;
  }
  var status = document.getElementById(dialog.getAttribute("data-status"));
  var plain = document.querySelector("form.timeout-keep[data-timeout=" + dialog.id + "]");
  if (plain) {
    plain.hidden = true;
  }
  function part(role) {
    return dialog.querySelector("[data-role=" + role + "]");
  }
  var title = part("title"), soon = part("soon"), finalText = part("final"), ended = part("ended"),
    left = part("left"), clock = part("clock"), failed = part("failed"),
    keep = part("keep"), close = part("close"), login = part("login");
  var titleSoon = title.textContent;

  var endsAt, extendable, warnTimer, endTimer, tick, over = false;
  var warn = Number(dialog.getAttribute("data-warn")) || 120;

  // schedule sets the end endsIn seconds from now and the warning before it.
  function schedule(endsIn, canExtend) {
    clearTimeout(warnTimer);
    clearTimeout(endTimer);
    endsAt = Date.now() + endsIn * 1000;
    extendable = canExtend;
    warnTimer = setTimeout(open, Math.max(0, (endsIn - warn) * 1000));
    endTimer = setTimeout(end, Math.max(0, endsIn * 1000));
  }

  function show(el, on) {
    el.hidden = !on;
  }

  function render() {
    var s = Math.max(0, Math.ceil((endsAt - Date.now()) / 1000));
    clock.textContent = Math.floor(s / 60) + ":" + ("0" + (s % 60)).slice(-2);
  }

  function open() {
    if (over) {
      return;
    }
    title.textContent = extendable ? titleSoon : dialog.getAttribute("data-title-final");
    show(soon, extendable);
    show(finalText, !extendable);
    show(ended, false);
    show(left, true);
    show(keep, extendable);
    show(close, !extendable);
    if (login) {
      show(login, false);
    }
    failed.textContent = "";
    render();
    clearInterval(tick);
    tick = setInterval(render, 1000);
    if (!dialog.open) {
      dialog.showModal();
    }
  }

  // end: the session has ended; it cannot be kept, only logged in again.
  function end() {
    over = true;
    clearTimeout(warnTimer);
    clearTimeout(endTimer);
    clearInterval(tick);
    title.textContent = dialog.getAttribute("data-title-ended");
    show(soon, false);
    show(finalText, false);
    show(left, false);
    show(ended, true);
    show(keep, false);
    // With no page to log in again on, Close: the login page's own
    // Cancel then leads back to the service.
    show(close, !login);
    if (login) {
      show(login, true);
    }
    failed.textContent = "";
    if (!dialog.open) {
      dialog.showModal();
    }
    (login || close).focus();
  }

  function announceKept() {
    if (status) {
      // Emptied first, so that the same words are announced again.
      status.textContent = "";
      setTimeout(function () {
        status.textContent = status.getAttribute("data-msg-kept");
      }, 50);
    }
  }

  // The page's sentence that says until when (#ID-info), which a login's
  // keep answers anew with the new end (info): the page then says the
  // time the dialog counts to, not the one it was loaded with.
  var info = document.getElementById(dialog.id + "-info");
  var infoText = "";
  function say(text) {
    if (info && typeof text === "string" && text) {
      infoText = text;
      info.textContent = text;
    }
  }

  function kept(answer) {
    clearInterval(tick);
    dialog.close();
    schedule(answer.ends_in, answer.extendable === true);
    say(answer.info);
    announceKept();
    tell();
  }

  // The other tabs of the same session, or of the same login request:
  // only a page that holds the keep token joins its channel.
  var csrf = dialog.getAttribute("data-keep-csrf");
  var channel = null;
  if (csrf && typeof BroadcastChannel === "function") {
    channel = new BroadcastChannel("varde-timeout/" + dialog.id + "/" + csrf);
    channel.onmessage = function (e) {
      var m = e.data;
      if (!m || typeof m.endsAt !== "number" || m.endsAt <= endsAt) {
        // Not later than what this tab counts to: nothing to move.
        return;
      }
      var wasOpen = dialog.open;
      over = false;
      clearInterval(tick);
      if (wasOpen) {
        dialog.close();
      }
      schedule((m.endsAt - Date.now()) / 1000, m.extendable === true);
      if (m.lang === document.documentElement.lang) {
        // A sentence in this page's language only.
        say(m.info);
      }
      if (wasOpen) {
        announceKept();
      }
    };
  }

  // tell says this tab's end to the other tabs.
  function tell() {
    if (channel) {
      channel.postMessage({ endsAt: endsAt, extendable: extendable, info: infoText, lang: document.documentElement.lang });
    }
  }

  keep.addEventListener("click", function () {
    keep.disabled = true;
    failed.textContent = "";
    fetch(dialog.getAttribute("data-keep"), {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": dialog.getAttribute("data-keep-csrf") },
      body: dialog.getAttribute("data-keep-body") || "{}"
    }).then(function (res) {
      return res.json().catch(function () {
        return {};
      }).then(function (body) {
        keep.disabled = false;
        if (res.ok && typeof body.ends_in === "number") {
          kept(body);
        } else if (res.status === 401) {
          end();
        } else {
          // The server's words when it has some (a page out of date
          // after a login in another tab), else "try again".
          failed.textContent = typeof body.message === "string" && body.message ? body.message : dialog.getAttribute("data-msg-failed");
          keep.focus();
        }
      });
    }).catch(function () {
      keep.disabled = false;
      failed.textContent = dialog.getAttribute("data-msg-failed");
      keep.focus();
    });
  });
  close.addEventListener("click", function () {
    dialog.close();
  });
  dialog.addEventListener("close", function () {
    clearInterval(tick);
  });

  schedule(Number(dialog.getAttribute("data-ends-in")) || 0, dialog.getAttribute("data-extendable") === "true");
  // A page loaded under the session used it: the other tabs' ends move
  // with it. A login page's end is the request's, which they may count
  // from as well.
  tell();
})();
