// flowviz uploads: drag-and-drop or file picker, streamed to /api/upload as multipart (never base64),
// one request per file, with upload progress and the server's one-line error shown in #upload-status.
(function () {
  "use strict";

  function status(text, isError) {
    var box = document.getElementById("upload-status") || document.getElementById("add-point-status");
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

  // files: sent in one request; url: /api/upload (extra fields: sip_ports, as_set) or a capture's
  // /api/capture/<id>/add-point; done: what to do once the server took them.
  function send(files, maxBytes, url, fields, done) {
    var label = files.map(function (f) { return f.name; }).join(" + ");
    for (var i = 0; i < files.length; i += 1) {
      if (files[i].size > maxBytes) {
        status(files[i].name + ": file too large (" + human(files[i].size) + "): the limit is " + human(maxBytes), true);
        return;
      }
    }
    var line = status(label + ": uploading 0%", false);
    var form = new FormData();
    Object.keys(fields).forEach(function (k) { form.append(k, fields[k]); });
    if (keylogFile && url === "/api/upload") {  // optional: the TLS key log sent with the captures
      form.append("keylog", keylogFile, keylogFile.name);
    }
    files.forEach(function (f) { form.append("file", f, f.name); });
    var xhr = new XMLHttpRequest();
    xhr.open("POST", url);
    xhr.setRequestHeader("X-CSRF-Token", window.flowvizToken ? window.flowvizToken() : "");
    xhr.upload.onprogress = function (e) {
      if (e.lengthComputable) { line.textContent = label + ": uploading " + Math.round(100 * e.loaded / e.total) + "%"; }
    };
    xhr.onload = function () {
      var body = {};
      try { body = JSON.parse(xhr.responseText); } catch (err) { body = {}; }
      if (xhr.status === 200) {
        line.textContent = label + ": uploaded, analysing";
        done();
      } else {
        // a body over the server's own limit is refused by the WSGI server before the app sees it (no JSON)
        line.textContent = body.error || (xhr.status === 413 ? label + ": file too large for this server"
                                          : label + ": upload refused (HTTP " + xhr.status + ")");
        line.className = "error";
      }
    };
    xhr.onerror = function () { line.textContent = label + ": upload failed (connection)"; line.className = "error"; };
    xhr.send(form);
  }

  function refreshList() {
    var refresh = document.getElementById("refresh-captures");
    if (refresh) { refresh.click(); }  // the captures list shows it now, not at the next poll
  }

  function sendAll(fileList) {
    var zone = document.getElementById("drop-zone");
    var maxBytes = zone ? Number(zone.getAttribute("data-max-bytes")) : Infinity;
    var ports = document.getElementById("sip-ports");
    var fields = {sip_ports: ports ? ports.value : ""};  // extra SIP ports, checked by the server
    var files = Array.prototype.slice.call(fileList);
    var asSet = document.querySelector("#as-set input[type=checkbox]");
    if (asSet && asSet.checked && files.length > 1) {  // one capture set: every file in one request
      fields.as_set = "1";
      send(files, maxBytes, "/api/upload", fields, refreshList);
      return;
    }
    files.forEach(function (f) { send([f], maxBytes, "/api/upload", fields, refreshList); });
  }

  // "add a capture point" on a capture's page: one more file into that capture set
  var pointPicker = document.createElement("input");
  pointPicker.type = "file";
  pointPicker.accept = ".pcap,.pcapng,.cap,.gz";
  pointPicker.id = "point-input";
  pointPicker.style.display = "none";
  pointPicker.addEventListener("change", function () {
    var button = document.getElementById("add-point");
    var files = Array.prototype.slice.call(pointPicker.files);
    pointPicker.value = "";
    if (!button || !files.length) { return; }
    var url = "/api/capture/" + encodeURIComponent(button.getAttribute("data-capture")) + "/add-point";
    send(files, Infinity, url, {}, function () { window.location.reload(); });  // the page polls the new analysis
  });

  // the TLS key log chosen for the next uploads (kept until another is chosen)
  var keylogFile = null;
  var keylogPicker = document.createElement("input");
  keylogPicker.type = "file";
  keylogPicker.id = "keylog-input";
  keylogPicker.style.display = "none";
  keylogPicker.addEventListener("change", function () {
    keylogFile = keylogPicker.files.length ? keylogPicker.files[0] : null;
    var shown = document.getElementById("keylog-name");
    if (shown) { shown.textContent = keylogFile ? " " + keylogFile.name + " " : ""; }
  });

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
    if (e.target && e.target.id === "choose-keylog") {
      if (!keylogPicker.isConnected) { document.body.appendChild(keylogPicker); }
      keylogPicker.click();
    }
    if (e.target && e.target.id === "add-point") {
      if (!pointPicker.isConnected) { document.body.appendChild(pointPicker); }
      pointPicker.click();
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
