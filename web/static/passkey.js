// Varde passkey ceremonies: login, enrolment of test persons, adding a
// passkey on the account page. Every element with class
// "passkey-ceremony" describes one ceremony in data-* attributes:
//   data-ceremony  "login", "enrol" or "add"
//   data-begin     URL that returns {"ceremony", "options": {"publicKey"}}
//   data-finish    URL that takes the credential and returns {"redirect"}
//   data-cancel    URL told of a ceremony the browser called off (add)
//   data-attempt   the login attempt (login, enrol)
//   data-csrf      sent as X-CSRF-Token (add)
//   data-msg-*     every text shown, already in the page language
//   data-title-error  the page title while an error is shown
// A form marked novalidate (enrolment) is not checked by the browser,
// whose bubble goes away and speaks the browser's language: Varde's
// answer says what is wrong, and a date of birth half typed, which the
// browser sends as no date, is told here (data-msg-birth).
// Progress ("working", "done") is shown in data-role=progress, a polite
// live region; an error in data-role=message, a role=alert element that
// is in the page from the start and empty until an error fills it, so it
// is announced at once (WCAG 4.1.3, 3.3.1). The ceremony is no longer
// aria-busy when the error is shown, since that holds announcements back.
// The server answers failures with {"error", "message"}; the message is
// shown as it is. When the error is about fields of the form (fieldErrors),
// they are marked invalid, described by the message and the first is
// focused (WCAG 3.3.1, 4.1.2); any other error takes the focus itself
// (its button was disabled meanwhile, which drops the focus to the page's
// body). A 503 or 429 without one (from a proxy in front, overloaded or
// limiting a source's rate) shows data-msg-busy, at the begin as at the
// finish, and, like every "try again", not the help desk. While an error is shown, the page title says so, as on
// the pages the server renders with an error (WCAG 2.4.2, 3.3.1); it is
// restored when the person tries again. No inline script: the page's CSP
// allows only this file.
(function () {
  "use strict";

  // --- base64url <-> ArrayBuffer (RFC 4648 §5, no padding) -------------
  function fromB64url(s) {
    s = String(s).replace(/-/g, "+").replace(/_/g, "/");
    while (s.length % 4) {
      s += "=";
    }
    var bin = atob(s);
    var out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) {
      out[i] = bin.charCodeAt(i);
    }
    return out.buffer;
  }

  function toB64url(buf) {
    var bytes = new Uint8Array(buf);
    var bin = "";
    for (var i = 0; i < bytes.length; i++) {
      bin += String.fromCharCode(bytes[i]);
    }
    return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function copy(o) {
    var out = {};
    for (var k in o) {
      if (Object.prototype.hasOwnProperty.call(o, k)) {
        out[k] = o[k];
      }
    }
    return out;
  }

  function descriptors(list) {
    return (list || []).map(function (c) {
      var d = copy(c);
      d.id = fromB64url(c.id);
      return d;
    });
  }

  // PublicKeyCredentialRequestOptionsJSON -> options for credentials.get.
  function requestOptions(json) {
    var o = copy(json);
    o.challenge = fromB64url(json.challenge);
    if (json.allowCredentials) {
      o.allowCredentials = descriptors(json.allowCredentials);
    }
    return o;
  }

  // PublicKeyCredentialCreationOptionsJSON -> options for credentials.create.
  function creationOptions(json) {
    var o = copy(json);
    o.challenge = fromB64url(json.challenge);
    o.user = copy(json.user);
    o.user.id = fromB64url(json.user.id);
    if (json.excludeCredentials) {
      o.excludeCredentials = descriptors(json.excludeCredentials);
    }
    return o;
  }

  // The standard JSON form of a PublicKeyCredential (WebAuthn L3 §5.1,
  // toJSON), written out so it works where toJSON is missing.
  function credentialJSON(cred) {
    var r = cred.response;
    var out = {
      id: cred.id,
      rawId: toB64url(cred.rawId),
      type: cred.type,
      clientExtensionResults: cred.getClientExtensionResults ? cred.getClientExtensionResults() : {},
      response: { clientDataJSON: toB64url(r.clientDataJSON) }
    };
    if (cred.authenticatorAttachment) {
      out.authenticatorAttachment = cred.authenticatorAttachment;
    }
    if (r.attestationObject) {
      out.response.attestationObject = toB64url(r.attestationObject);
      out.response.transports = r.getTransports ? r.getTransports() : [];
    } else {
      out.response.authenticatorData = toB64url(r.authenticatorData);
      out.response.signature = toB64url(r.signature);
      if (r.userHandle) {
        out.response.userHandle = toB64url(r.userHandle);
      }
    }
    return out;
  }

  // postJSON resolves to {ok, status, data}; data is {} when the reply is
  // not JSON.
  function postJSON(url, body, csrf) {
    var headers = { "Content-Type": "application/json", "Accept": "application/json" };
    if (csrf) {
      headers["X-CSRF-Token"] = csrf;
    }
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: headers,
      body: JSON.stringify(body)
    }).then(function (res) {
      return res.json().catch(function () { return {}; }).then(function (data) {
        return { ok: res.ok, status: res.status, data: data || {} };
      });
    });
  }

  // Error codes the person mends on their own, by a field, another
  // try or another passkey: with any other error the page shows the
  // operator's help desk, when it names one (data-role=passkey-support).
  // busy and unavailable (the node full, or its store not reachable)
  // pass with time: their message says to try again in a minute, which
  // is all a help desk could say.
  var ownErrors = {
    enrol_name: true, enrol_birth: true, passkey_name: true,
    credential_exists: true, not_verified: true, cancelled: true,
    replay: true, expired: true, wrong_ceremony: true, busy: true,
    unavailable: true
  };

  // Error codes about form fields, and the names of those fields.
  var fieldErrors = {
    enrol_name: ["given_name", "family_name"],
    enrol_birth: ["birth_date"],
    passkey_name: ["name"]
  };

  function setup(el) {
    var kind = el.getAttribute("data-ceremony");
    var start = el.querySelector("[data-role=start]");
    var button = el.querySelector("[data-role=button]");
    var message = el.querySelector("[data-role=message]");
    var progress = el.querySelector("[data-role=progress]") || message;
    function msg(name) {
      return el.getAttribute("data-msg-" + name) || el.getAttribute("data-msg-failed") || "";
    }
    var title = document.title;
    var errorTitle = el.getAttribute("data-title-error");
    function show(text, isError) {
      if (isError) {
        el.removeAttribute("aria-busy");
      }
      progress.textContent = isError ? "" : text;
      if (progress !== message) {
        message.textContent = isError ? text : "";
      }
      message.className = isError ? "error" : "";
      document.title = isError && errorTitle ? errorTitle : title;
    }
    var support = document.querySelector("[data-role=passkey-support]");
    function showSupport(on) {
      if (support) {
        support.hidden = !on;
      }
    }
    if (!message.id) {
      message.id = "passkey-" + kind + "-message";
    }
    // markFields ties the message to the fields error code is about, and
    // unties it from those it marked before.
    var marked = [];
    function markFields(code) {
      marked.forEach(function (f) {
        f.removeAttribute("aria-invalid");
        var ids = (f.getAttribute("aria-describedby") || "").split(" ").filter(function (id) {
          return id && id !== message.id;
        });
        if (ids.length) {
          f.setAttribute("aria-describedby", ids.join(" "));
        } else {
          f.removeAttribute("aria-describedby");
        }
      });
      marked = [];
      (fieldErrors[code] || []).forEach(function (name) {
        var f = el.elements && el.elements[name];
        if (!f) {
          return;
        }
        f.setAttribute("aria-invalid", "true");
        var ids = (f.getAttribute("aria-describedby") || "").split(" ").filter(Boolean);
        ids.push(message.id);
        f.setAttribute("aria-describedby", ids.join(" "));
        marked.push(f);
      });
      if (marked.length) {
        marked[0].focus();
      }
    }
    if (!window.PublicKeyCredential || !navigator.credentials || !window.fetch) {
      show(msg("unsupported"), true);
      return;
    }
    if (start) {
      start.hidden = false;
    }

    function beginBody() {
      var attempt = el.getAttribute("data-attempt") || "";
      if (kind === "login") {
        return { attempt: attempt };
      }
      var f = el.elements;
      if (kind === "enrol") {
        var k = el.querySelector("input[name=kind]:checked");
        return {
          attempt: attempt,
          given_name: f.given_name.value,
          family_name: f.family_name.value,
          birth_date: f.birth_date.value,
          kind: k ? k.value : "fnr"
        };
      }
      return { name: f.name.value };
    }

    // localProblem is what the page can tell before asking Varde: a date
    // of birth half typed, whose value the browser gives as "" (no date,
    // which Varde would take as "make one up"). Every other field is
    // checked by Varde, whose answer says what is wrong in the page's
    // language; the form is novalidate, so the browser's own bubble,
    // which goes away and speaks the browser's language, is not used.
    function localProblem() {
      var birth = el.elements && el.elements.birth_date;
      if (kind === "enrol" && birth && birth.validity && birth.validity.badInput) {
        return { server: msg("birth"), code: "enrol_birth" };
      }
      return null;
    }

    var busy = false;
    function run() {
      if (busy) {
        return;
      }
      busy = true;
      button.disabled = true;
      el.setAttribute("aria-busy", "true");
      show(msg("working"), false);
      var csrf = el.getAttribute("data-csrf");
      var ceremonyID = "";
      var leaving = false;
      var problem = localProblem();
      var begin = problem ? Promise.reject(problem) : postJSON(el.getAttribute("data-begin"), beginBody(), csrf);
      begin.then(function (begun) {
        if (!begun.ok || !begun.data.options || !begun.data.options.publicKey) {
          throw { server: begun.data.message, status: begun.status, code: begun.data.error };
        }
        var pk = begun.data.options.publicKey;
        ceremonyID = begun.data.ceremony;
        var ceremony = kind === "login"
          ? navigator.credentials.get({ publicKey: requestOptions(pk) })
          : navigator.credentials.create({ publicKey: creationOptions(pk) });
        return ceremony.then(function (cred) {
          var url = el.getAttribute("data-finish") + "?ceremony=" + encodeURIComponent(begun.data.ceremony);
          return postJSON(url, credentialJSON(cred), csrf);
        });
      }).then(function (finished) {
        if (!finished.ok || !finished.data.redirect) {
          throw { server: finished.data.message, status: finished.status, code: finished.data.error };
        }
        leaving = true;
        markFields(null);
        showSupport(false);
        show(msg("done"), false);
        window.location.assign(finished.data.redirect);
      }).catch(function (err) {
        markFields(err && err.code);
        var code = err && (err.code || (err.name === "NotAllowedError" && "cancelled") ||
          (err.name === "InvalidStateError" && "credential_exists"));
        // Any 503 or 429, with a code or not, passes with time.
        var retry = !!err && (err.status === 503 || err.status === 429);
        showSupport(!ownErrors[code] && !retry);
        if (err && err.server) {
          show(err.server, true);
        } else if (retry) {
          show(msg("busy"), true);
        } else if (err && err.name === "NotAllowedError") {
          show(msg("cancelled"), true);
          if (ceremonyID && el.getAttribute("data-cancel")) {
            // The person called it off (or it timed out): the server ends
            // the ceremony and records it as such, not as a refusal.
            postJSON(el.getAttribute("data-cancel") + "?ceremony=" + encodeURIComponent(ceremonyID), {}, csrf)
              .catch(function () {});
          }
        } else if (err && err.name === "InvalidStateError") {
          show(msg("exists"), true);
        } else {
          show(msg("failed"), true);
        }
        if (!marked.length) {
          message.focus();
        }
      }).then(function () {
        busy = false;
        el.removeAttribute("aria-busy");
        if (!leaving) {
          button.disabled = false;
        }
      });
    }

    if (el.tagName === "FORM") {
      el.addEventListener("submit", function (ev) {
        ev.preventDefault();
        if (!el.noValidate && el.reportValidity && !el.reportValidity()) {
          return;
        }
        run();
      });
    } else {
      button.addEventListener("click", run);
    }
  }

  var all = document.querySelectorAll(".passkey-ceremony");
  for (var i = 0; i < all.length; i++) {
    setup(all[i]);
  }
})();
