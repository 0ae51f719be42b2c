// Resumable uploads for the caller's page (tus, with tus-js-client served from this host). Without script, or in
// a browser tus-js-client does not support, the form is sent as it is (plain multipart, not resumable).
// A dropped connection is retried from the last byte that arrived: tus-js-client asks the server how far it got.
(function () {
  var form = document.getElementById("send-form");
  if (!form || !window.tus || !window.tus.isSupported) return;
  var script = document.currentScript;
  var input = document.getElementById("files");
  var bar = document.getElementById("progress");
  var status = document.getElementById("upload-state");
  var maxFiles = parseInt(script.dataset.maxFiles, 10);
  var maxVideo = parseInt(script.dataset.maxVideo, 10);
  var maxPhoto = parseInt(script.dataset.maxPhoto, 10);

  function say(text) { status.textContent = text; }

  function tooBig(file) {
    var video = file.type.indexOf("video/") === 0;
    return file.size > (video ? maxVideo : maxPhoto);
  }

  form.addEventListener("submit", function (event) {
    var files = Array.prototype.slice.call(input.files || []);
    if (!files.length) return;  // the browser's own "required" message
    event.preventDefault();
    if (files.length > maxFiles) { say(script.dataset.tooMany); return; }
    var big = files.filter(tooBig);
    if (big.length) { say(script.dataset.tooBig + " " + big.map(function (f) { return f.name; }).join(", ")); return; }
    var total = files.reduce(function (sum, f) { return sum + f.size; }, 0);
    var before = 0;
    var ids = [];
    bar.hidden = false;
    bar.max = total;
    form.querySelector("button[type=submit]").disabled = true;

    function next(index) {
      if (index === files.length) { return done(); }
      var file = files[index];
      say(script.dataset.sending.replace("{n}", index + 1).replace("{total}", files.length));
      var upload = new window.tus.Upload(file, {
        endpoint: script.dataset.endpoint,
        chunkSize: 5 * 1024 * 1024,  // a dropped connection costs at most this much again
        retryDelays: [0, 1000, 3000, 5000, 10000, 20000, 30000],
        removeFingerprintOnSuccess: true,
        metadata: { filetype: file.type || "application/octet-stream" },
        onProgress: function (sent) { bar.value = before + sent; },
        onError: function () { say(script.dataset.failed); form.querySelector("button[type=submit]").disabled = false; },
        onSuccess: function () {
          ids.push(upload.url.split("/").pop());
          before += file.size;
          next(index + 1);
        }
      });
      upload.findPreviousUploads().then(function (previous) {  // the same file after a reload: go on
        if (previous.length) { upload.resumeFromPreviousUpload(previous[0]); }
        upload.start();
      });
    }

    function done() {
      say(script.dataset.checking);
      var finish = document.createElement("form");
      finish.method = "post";
      finish.action = script.dataset.done;
      var values = ids.map(function (id) { return ["upload", id]; });
      ["lat", "lon", "accuracy"].forEach(function (name) {
        var value = document.getElementById(name).value;
        if (value) { values.push([name, value]); }
      });
      values.forEach(function (pair) {
        var field = document.createElement("input");
        field.type = "hidden";
        field.name = pair[0];
        field.value = pair[1];
        finish.appendChild(field);
      });
      document.body.appendChild(finish);
      finish.submit();
    }

    next(0);
  });
})();
