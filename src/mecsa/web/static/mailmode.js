(function () {
  // Follows one mail-mode test through server-sent events; every text is set with textContent.
  var script = document.getElementById('mailmode-script');
  var live = document.getElementById('mail-live');
  var source = new EventSource(script.dataset.events);
  var shownReady = live.dataset.stage === 'report_ready';
  source.addEventListener('state', function (message) {
    var data = JSON.parse(message.data);
    if (data.version === live.dataset.version) { return; }
    // the report (or a trap verdict inside it) changed: the server renders it, so load it again
    if (data.stage === 'report_ready' || shownReady) { source.close(); window.location.reload(); return; }
    live.dataset.stage = data.stage;
    live.dataset.version = data.version;
    ['probe', 'reply', 'report'].forEach(function (name) {
      var step = document.getElementById('step-' + name);
      step.className = data.steps[name]['class'];
      document.getElementById(name + '-status').textContent = data.steps[name].text;
    });
  });
  source.addEventListener('final', function () { source.close(); });
}());
