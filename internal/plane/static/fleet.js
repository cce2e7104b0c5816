// Refreshes the fleet table in place. The page works without it: filters and
// sorting are in the URL, which this keeps, fetching the same query's rows
// from the plane itself.
(function () {
  'use strict';
  var table = document.getElementById('installs');
  if (!table || !window.fetch || !window.DOMParser) {
    return;
  }
  var every = parseInt(table.getAttribute('data-refresh-ms'), 10) || 15000;
  var status = document.getElementById('refresh-status');
  function say(text) {
    if (status) {
      status.textContent = text;
    }
  }
  function swap(doc, id) {
    var fresh = doc.getElementById(id);
    var old = document.getElementById(id);
    if (fresh && old) {
      old.replaceWith(document.importNode(fresh, true));
    }
  }
  function refresh() {
    fetch('/fleet/rows' + window.location.search, {credentials: 'same-origin', redirect: 'manual'})
      .then(function (resp) {
        if (resp.type === 'opaqueredirect' || resp.status === 401 || resp.status === 403) {
          var ended = new Error('the session ended; reload the page to log in again');
          ended.final = true;
          throw ended;
        }
        if (!resp.ok) {
          throw new Error('the plane answered HTTP ' + resp.status);
        }
        return resp.text();
      })
      .then(function (html) {
        var doc = new DOMParser().parseFromString(html, 'text/html');
        ['flags', 'fleet-count', 'installs-body'].forEach(function (id) { swap(doc, id); });
        say('Updated ' + new Date().toLocaleTimeString() + '.');
        setTimeout(refresh, every);
      })
      .catch(function (err) {
        if (err.final) {
          say('Live refresh stopped: ' + err.message + '.');
          return;
        }
        say('Live refresh failed (' + err.message + '); retrying.');
        setTimeout(refresh, every);
      });
  }
  setTimeout(refresh, every);
}());
