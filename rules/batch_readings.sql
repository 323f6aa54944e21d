-- Cars that buffer while offline send a batch on cars/<vin>/telemetry/batch:
--   {"vin":"...","readings":[{"timestamp":<µs>,"speed":..,"pos":{..},"battery":..}, ...]}
-- Each reading that has a speed becomes its own message on fleet/readings/<vin>.
CREATE RULE batch_readings AS
FOREACH payload.readings AS r
DO payload.vin AS vin, r.timestamp AS reading_ts, r.speed AS speed,
   r.pos.lat AS lat, r.pos.lon AS lon, r.battery AS battery
INCASE is_not_null(r.speed)
FROM "cars/+/telemetry/batch"
INTO republish (topic = 'fleet/readings/${vin}');
