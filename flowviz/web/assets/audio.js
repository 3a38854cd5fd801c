// flowviz call page: the waveform's cursor (its shapes[0]) follows whichever player (.flowviz-audio) plays.
// Each player's data-t0 is where its sample 0 is on the waveform's time axis (capture time s).
(function () {
  "use strict";

  var playing = null, last = 0;

  function move(audio) {
    var box = document.getElementById("waveform");
    var plot = box && box.querySelector(".js-plotly-plot");
    if (!plot || !window.Plotly || !plot.layout || !plot.layout.shapes || !plot.layout.shapes.length) { return; }
    var x = Number(audio.getAttribute("data-t0") || 0) + audio.currentTime;
    window.Plotly.relayout(plot, {"shapes[0].x0": x, "shapes[0].x1": x, "shapes[0].visible": true});
  }

  function frame(now) {
    if (!playing || playing.paused || playing.ended) { return; }
    if (now - last > 100) { last = now; move(playing); }  // ten moves a second are smooth enough
    window.requestAnimationFrame(frame);
  }

  function isPlayer(target) { return target && target.classList && target.classList.contains("flowviz-audio"); }

  // media events do not bubble: listen in the capture phase
  document.addEventListener("play", function (e) {
    if (!isPlayer(e.target)) { return; }
    playing = e.target;
    window.requestAnimationFrame(frame);
  }, true);
  ["seeked", "pause", "ended"].forEach(function (name) {
    document.addEventListener(name, function (e) { if (isPlayer(e.target)) { move(e.target); } }, true);
  });
})();
