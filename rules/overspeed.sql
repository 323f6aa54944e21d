-- Cars over 130 km/h: an alert per telemetry message on fleet/alerts/<vin>.
--
-- Telemetry (mqbench fleet) on cars/<vin>/telemetry:
--   {"timestamp":<µs>,"vin":"...","speed":<km/h>,"pos":{"lat":..,"lon":..},
--    "heading":..,"battery":<%>,"odometer":<km>}
--
-- The DESIGN.md version also feeds Kafka and PostgreSQL. Bridge actions are an error until
-- bridges can be configured (they arrive with the Kafka/PostgreSQL/webhook issue); then add a
-- [bridges] entry named fleet / warehouse and use this INTO instead:
--
--   INTO kafka.fleet (topic = 'alerts.overspeed', key = '${vin}'),
--        postgres.warehouse (statement = 'INSERT INTO overspeed (vin, speed, lat, ts)
--                                         VALUES (${vin}, ${speed}, ${lat}, ${ts})'),
--        republish (topic = 'fleet/alerts/${vin}', qos = 1);
CREATE RULE overspeed AS
SELECT payload.vin AS vin, payload.speed AS speed, payload.pos.lat AS lat, timestamp AS ts
FROM "cars/+/telemetry"
WHERE payload.speed > 130
INTO republish (topic = 'fleet/alerts/${vin}', qos = 1);
