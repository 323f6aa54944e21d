-- Cars outside the operating area (a bounding box around Munich: lat 47.9 .. 48.4,
-- lon 11.2 .. 11.9) are reported on fleet/geofence/<vin>.
CREATE RULE geofence_exit AS
SELECT payload.vin AS vin, payload.pos.lat AS lat, payload.pos.lon AS lon,
       payload.heading AS heading, timestamp AS ts
FROM "cars/+/telemetry"
WHERE payload.pos.lat < 47.9 OR payload.pos.lat > 48.4
   OR payload.pos.lon < 11.2 OR payload.pos.lon > 11.9
INTO republish (topic = 'fleet/geofence/${vin}', qos = 1);
