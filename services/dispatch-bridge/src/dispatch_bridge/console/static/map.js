// The console map: incidents (a circle over the spread of their reports) and each report as a dot, red for
// urgent. Leaflet is served from our own files (the xstatic-leaflet package); the tile server is a setting, and
// without one (or when it cannot be reached) the markers still show on a plain background.
// Beside a list (data-rows: the element holding rows with data-incident-id), the row under the pointer or the
// keyboard's focus lights up its incident on the map, and the incident under the pointer lights up its row.
// When the live feed changed the page (console.js says "console:refreshed"), the map draws the incidents again.
"use strict";
(function () {
  const element = document.getElementById("map");
  if (!element || !window.L) return;
  const map = L.map(element, {keyboard: true}).setView([52.1, 5.3], 8);
  if (element.dataset.tiles) {
    L.tileLayer(element.dataset.tiles, {maxZoom: 19, attribution: element.dataset.attribution}).addTo(map);
  }
  const layer = L.layerGroup().addTo(map);
  const rows = element.dataset.rows ? document.getElementById(element.dataset.rows) : null;
  let drawn = {};  // incident id: its marker and circle
  let lit = null;
  function text(words) {  // Leaflet would read a string as HTML: give it an element holding plain text
    const span = document.createElement("span");
    span.textContent = words;
    return span;
  }

  function light(id) {
    if (id === lit) return;
    const before = drawn[lit], after = drawn[id];
    if (before) {
      before.marker.setStyle({weight: 2, radius: 9});
      before.circle.setStyle({weight: 2, fillOpacity: 0.1});
      before.marker.closeTooltip();
    }
    lit = id;
    if (after) {
      after.marker.setStyle({weight: 5, radius: 13});
      after.circle.setStyle({weight: 4, fillOpacity: 0.25});
      after.marker.bringToFront();
      after.marker.openTooltip();
      if (!map.getBounds().contains(after.marker.getLatLng())) map.panTo(after.marker.getLatLng());
    }
    if (rows) {
      rows.querySelectorAll("[data-incident-id]").forEach(function (row) {
        row.classList.toggle("highlight", row.dataset.incidentId === id);
      });
    }
  }
  if (rows) {  // on the container: it stays while the live feed replaces its rows
    function rowOf(event) {
      const row = event.target.closest && event.target.closest("[data-incident-id]");
      return row && rows.contains(row) ? row.dataset.incidentId : null;
    }
    rows.addEventListener("mouseover", function (event) { light(rowOf(event)); });
    rows.addEventListener("focusin", function (event) { light(rowOf(event)); });
    rows.addEventListener("mouseleave", function () { light(null); });
    rows.addEventListener("focusout", function (event) {
      if (!rows.contains(event.relatedTarget)) light(null);
    });
  }

  function draw(incidents, fit) {
    layer.clearLayers();
    drawn = {};
    const bounds = [];
    incidents.forEach(function (incident) {
      const colour = incident.priority === 1 ? "#b00020" : "#0b4f9c";
      const label = incident.label + " · " + incident.place + " (" + incident.witnesses + ")";
      if (incident.centre) {
        const centre = [incident.centre.lat, incident.centre.lon];
        const circle = L.circle(centre, {radius: Math.max(incident.radius_m, 30), color: colour, weight: 2,
                                         fillOpacity: 0.1}).addTo(layer);
        const marker = L.circleMarker(centre, {radius: 9, color: "#000", weight: 2, fillColor: colour,
                                               fillOpacity: 0.9}).addTo(layer);
        const link = document.createElement("a");
        link.href = "/console/incidents/" + encodeURIComponent(incident.incident_id);
        link.textContent = label;
        marker.bindPopup(link);
        marker.bindTooltip(text(label));
        marker.on("mouseover", function () { light(incident.incident_id); });
        marker.on("mouseout", function () { light(null); });
        drawn[incident.incident_id] = {marker: marker, circle: circle};
        bounds.push(centre);
      }
      incident.reports.forEach(function (report) {
        L.circleMarker([report.lat, report.lon], {radius: 4, color: colour, weight: 1, fillOpacity: 0.7})
          .bindTooltip(text(report.reference)).addTo(layer);
        bounds.push([report.lat, report.lon]);
      });
    });
    element.dataset.markers = String(bounds.length);
    const was = lit;
    lit = null;
    if (was) light(was);
    // Fitted once, when the page opens: later the dispatcher's own zoom and place stay as they left them.
    if (fit && bounds.length) map.fitBounds(bounds, {maxZoom: 16, padding: [30, 30]});
  }
  function load(fit) {
    fetch(element.dataset.source, {headers: {"X-Console": "fetch"}, credentials: "same-origin"})
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (incidents) { if (incidents) draw(incidents, fit); })
      .catch(function () {});
  }
  load(true);
  document.addEventListener("console:refreshed", function () { load(false); });
})();
