// The caller's location, only when they press the button (the browser then asks them), into the form's hidden
// fields. Without script, or without permission, the form is sent without it and the incident's place is used.
(function () {
  var script = document.currentScript;
  var button = document.getElementById("share-location");
  var state = document.getElementById("location-state");
  if (!button || !("geolocation" in navigator)) return;
  button.hidden = false;
  button.addEventListener("click", function () {
    navigator.geolocation.getCurrentPosition(
      function (position) {
        document.getElementById("lat").value = position.coords.latitude;
        document.getElementById("lon").value = position.coords.longitude;
        document.getElementById("accuracy").value = Math.round(position.coords.accuracy || 0) || "";
        state.textContent = script.dataset.on;
      },
      function () { state.textContent = script.dataset.off; },
      { enableHighAccuracy: true, timeout: 15000, maximumAge: 60000 }
    );
  });
})();
