-- Cars over 130 km/h: to Kafka (keyed by car, so each car's events stay in order) and PostgreSQL,
-- and an alert on fleet/alerts/<vin> for whoever subscribes.
--
-- Telemetry (mqbench fleet) on cars/<vin>/telemetry:
--   {"timestamp":<µs>,"vin":"...","speed":<km/h>,"pos":{"lat":..,"lon":..},
--    "heading":..,"battery":<%>,"odometer":<km>}
CREATE RULE overspeed AS
SELECT clientid AS vin, payload.speed AS speed, payload.pos.lat AS lat, timestamp AS ts
FROM "cars/+/telemetry"
WHERE payload.speed > 130
INTO kafka.fleet (topic = 'alerts.overspeed', key = '${vin}'),
     postgres.warehouse (statement = 'INSERT INTO overspeed (vin, speed, lat, ts) VALUES (${vin}, ${speed}, ${lat}, ${ts})'),
     republish (topic = 'fleet/alerts/${vin}', qos = 1);
