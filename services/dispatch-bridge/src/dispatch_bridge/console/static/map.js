// The console map: incidents (a circle over the spread of their reports) and each report as a dot, red for
// urgent. Leaflet is served from our own files (the xstatic-leaflet package); the tile server is a setting, and
// without one (or when it cannot be reached) the markers still show on a plain background.
"use strict";
(function () {
  const element = document.getElementById("map");
  if (!element || !window.L) return;
  const map = L.map(element, {keyboard: true}).setView([52.1, 5.3], 8);
  if (element.dataset.tiles) {
    L.tileLayer(element.dataset.tiles, {maxZoom: 19, attribution: element.dataset.attribution}).addTo(map);
  }
  const layer = L.layerGroup().addTo(map);
  function text(words) {  // Leaflet would read a string as HTML: give it an element holding plain text
    const span = document.createElement("span");
    span.textContent = words;
    return span;
  }
  function draw(incidents) {
    layer.clearLayers();
    const bounds = [];
    incidents.forEach(function (incident) {
      const colour = incident.priority === 1 ? "#b00020" : "#0b4f9c";
      const label = incident.label + " · " + incident.incident_id.slice(0, 8) + " (" + incident.witnesses + ")";
      if (incident.centre) {
        const centre = [incident.centre.lat, incident.centre.lon];
        L.circle(centre, {radius: Math.max(incident.radius_m, 30), color: colour, weight: 2, fillOpacity: 0.1})
          .addTo(layer);
        const marker = L.circleMarker(centre, {radius: 9, color: "#000", weight: 2, fillColor: colour,
                                               fillOpacity: 0.9}).addTo(layer);
        const link = document.createElement("a");
        link.href = "/console/incidents/" + encodeURIComponent(incident.incident_id);
        link.textContent = label;
        marker.bindPopup(link);
        marker.bindTooltip(text(label));
        bounds.push(centre);
      }
      incident.reports.forEach(function (report) {
        L.circleMarker([report.lat, report.lon], {radius: 4, color: colour, weight: 1, fillOpacity: 0.7})
          .bindTooltip(text(report.reference)).addTo(layer);
        bounds.push([report.lat, report.lon]);
      });
    });
    element.dataset.markers = String(bounds.length);
    if (bounds.length) map.fitBounds(bounds, {maxZoom: 16, padding: [30, 30]});
  }
  fetch(element.dataset.source, {headers: {"X-Console": "fetch"}, credentials: "same-origin"})
    .then(function (r) { return r.json(); }).then(draw);
})();
