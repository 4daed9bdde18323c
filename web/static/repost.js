// Varde: a relying party's authorization request that came as a POST
// from its own site arrives without Varde's cookies (SameSite=Lax), so
// its page posts the same form again from Varde's origin, with them
// (ADR 58). With script that happens at once; without it the page
// shows its Continue button. No inline script: the page's CSP allows
// only files under /static.
(function () {
  "use strict";
  var form = document.getElementById("repost");
  if (form && form.submit) {
    form.submit();
  }
})();
