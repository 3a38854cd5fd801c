// flowviz uploads: drag-and-drop or file picker, streamed to /api/upload as multipart (never base64),
// one request per file, with upload progress and the server's one-line error shown in #upload-status.
(function () {
  "use strict";

  function status(text, isError) {
    var box = document.getElementById("upload-status");
    if (!box) { return; }
    var line = document.createElement("div");
    line.textContent = text;
    line.className = isError ? "error" : "";
    box.appendChild(line);
    while (box.childNodes.length > 6) { box.removeChild(box.firstChild); }
    return line;
  }

  function human(n) {
    var units = ["bytes", "KiB", "MiB", "GiB"], i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i += 1; }
    return (i ? n.toFixed(1).replace(/\.0$/, "") : n) + " " + units[i];
  }

  function send(file, maxBytes) {
    if (file.size > maxBytes) {
      status(file.name + ": file too large (" + human(file.size) + "): the limit is " + human(maxBytes), true);
      return;
    }
    var line = status(file.name + ": uploading 0%", false);
    var form = new FormData();
    var ports = document.getElementById("sip-ports");
    form.append("sip_ports", ports ? ports.value : "");  // extra SIP ports, checked by the server
    form.append("file", file, file.name);
    var xhr = new XMLHttpRequest();
    xhr.open("POST", "/api/upload");
    xhr.setRequestHeader("X-CSRF-Token", window.flowvizToken ? window.flowvizToken() : "");
    xhr.upload.onprogress = function (e) {
      if (e.lengthComputable) { line.textContent = file.name + ": uploading " + Math.round(100 * e.loaded / e.total) + "%"; }
    };
    xhr.onload = function () {
      var body = {};
      try { body = JSON.parse(xhr.responseText); } catch (err) { body = {}; }
      if (xhr.status === 200) {
        line.textContent = file.name + ": uploaded, analysing";
        var refresh = document.getElementById("refresh-captures");
        if (refresh) { refresh.click(); }  // the captures list shows it now, not at the next poll
      } else {
        line.textContent = body.error || (file.name + ": upload refused (HTTP " + xhr.status + ")");
        line.className = "error";
      }
    };
    xhr.onerror = function () { line.textContent = file.name + ": upload failed (connection)"; line.className = "error"; };
    xhr.send(form);
  }

  function sendAll(files) {
    var zone = document.getElementById("drop-zone");
    var maxBytes = zone ? Number(zone.getAttribute("data-max-bytes")) : Infinity;
    for (var i = 0; i < files.length; i += 1) { send(files[i], maxBytes); }
  }

  var picker = document.createElement("input");
  picker.type = "file";
  picker.multiple = true;
  picker.accept = ".pcap,.pcapng,.cap,.gz";
  picker.id = "file-input";
  picker.style.display = "none";
  picker.addEventListener("change", function () { sendAll(picker.files); picker.value = ""; });

  document.addEventListener("click", function (e) {
    if (e.target && e.target.id === "choose-files") {
      if (!picker.isConnected) { document.body.appendChild(picker); }
      picker.click();
    }
  });
  document.addEventListener("dragover", function (e) {
    var zone = e.target.closest && e.target.closest("#drop-zone");
    if (zone) { e.preventDefault(); zone.classList.add("over"); }
  });
  document.addEventListener("dragleave", function (e) {
    var zone = e.target.closest && e.target.closest("#drop-zone");
    if (zone) { zone.classList.remove("over"); }
  });
  document.addEventListener("drop", function (e) {
    var zone = e.target.closest && e.target.closest("#drop-zone");
    if (!zone) { return; }
    e.preventDefault();
    zone.classList.remove("over");
    sendAll(e.dataTransfer.files);
  });
})();
