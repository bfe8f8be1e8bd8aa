// The images page's drop zone: a photo dropped on it is put in the (labelled, keyboard-operable) file input and
// uploaded at once, through the same form a browser without JavaScript posts. Too large a file is refused here
// before a byte is sent; the console checks again on arrival.
(function () {
  "use strict";

  var form = document.getElementById("upload");
  if (!form) return;
  var input = form.querySelector("input[type=file]");
  var zone = document.getElementById("drop-zone");
  var note = document.getElementById("upload-problem");
  var limit = Number(form.getAttribute("data-max-bytes"));

  function say(text) {
    note.textContent = text;
    note.hidden = !text;
  }

  function acceptable() {
    var file = input.files && input.files[0];
    if (!file) {
      say("No file was chosen: choose a photo, or drop one here.");
      return false;
    }
    if (limit && file.size > limit) {
      var mib = function (n) { return (n / 1024 / 1024).toFixed(1) + " MiB"; };
      say("Not uploaded: the file is " + mib(file.size) + " (" + file.size + " bytes); photos may be at most " +
        mib(limit) + " (" + limit + " bytes).");
      return false;
    }
    say("");
    return true;
  }

  form.addEventListener("submit", function (event) {
    if (!acceptable()) event.preventDefault();
  });
  input.addEventListener("change", acceptable);

  ["dragenter", "dragover"].forEach(function (name) {
    zone.addEventListener(name, function (event) {
      event.preventDefault();
      zone.classList.add("dragging");
    });
  });
  ["dragleave", "drop"].forEach(function (name) {
    zone.addEventListener(name, function () {
      zone.classList.remove("dragging");
    });
  });
  zone.addEventListener("drop", function (event) {
    event.preventDefault();
    if (!event.dataTransfer || !event.dataTransfer.files.length) return;
    input.files = event.dataTransfer.files;
    if (acceptable()) form.requestSubmit();
  });
})();
