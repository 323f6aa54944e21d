-- Cars over 130 km/h: an alert per telemetry message on fleet/alerts/<vin>.
--
-- Telemetry (mqbench fleet) on cars/<vin>/telemetry:
--   {"timestamp":<µs>,"vin":"...","speed":<km/h>,"pos":{"lat":..,"lon":..},
--    "heading":..,"battery":<%>,"odometer":<km>}
--
-- The DESIGN.md version also feeds Kafka and PostgreSQL. A bridge action needs its bridge in the
-- config, so this default rule (loaded by `make run` with no external service) names none; the
-- bridged form, with its config, is examples/fleet/rules/overspeed.sql (README, "Bridges").
CREATE RULE overspeed AS
SELECT payload.vin AS vin, payload.speed AS speed, payload.pos.lat AS lat, timestamp AS ts
FROM "cars/+/telemetry"
WHERE payload.speed > 130
INTO republish (topic = 'fleet/alerts/${vin}', qos = 1);
