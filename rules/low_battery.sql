-- Battery below 15 %: fleet/battery/<vin> gets the level and where the car is.
CREATE RULE low_battery AS
SELECT payload.vin AS vin, payload.battery AS battery,
       payload.pos.lat AS lat, payload.pos.lon AS lon, timestamp AS ts
FROM "cars/+/telemetry"
WHERE payload.battery < 15
INTO republish (topic = 'fleet/battery/${vin}', qos = 1);
