(function () {
  // Follows one assessment through server-sent events; every text is set with textContent.
  var script = document.getElementById('progress-script');
  var status = document.getElementById('status');
  var problem = document.getElementById('problem');
  var source = new EventSource(script.dataset.events);
  function show(text) { problem.textContent = text; problem.hidden = false; }
  source.addEventListener('check', function (message) {
    var data = JSON.parse(message.data);
    var row = document.getElementById('check-' + data.check);
    if (row) {
      var worst = 'pass';
      data.protocols.forEach(function (p) { if (p.status !== 'pass' && p.status !== 'not_applicable') { worst = p.status; } });
      row.className = 'finished ' + worst;
      row.querySelector('.state').textContent = data.protocols.length ? worst : 'done';
      row.querySelector('.reason').textContent = data.protocols.map(function (p) { return p.protocol + ': ' + p.reason; }).join(' · ');
    }
    status.textContent = data.done + ' of ' + data.total + ' checks done';
  });
  source.addEventListener('done', function (message) {
    source.close();
    var data = JSON.parse(message.data);
    status.dataset.state = 'finished';
    status.textContent = 'Done: opening the report';
    window.location.replace(data.report);
  });
  function failed(message) {
    source.close();
    var data = JSON.parse(message.data);
    status.dataset.state = data.state;
    status.textContent = data.state === 'refused' ? 'Refused' : 'Failed';
    show(data.message);
  }
  source.addEventListener('refused', failed);
  source.addEventListener('failed', failed);
}());
