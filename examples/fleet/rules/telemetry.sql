-- Every telemetry message into Kafka, keyed by car. ack = 'after_sink': the car's PUBACK waits for
-- Kafka's delivery report (acks = all), so a car resends what Kafka did not confirm.
CREATE RULE telemetry AS
SELECT clientid AS vin, payload.speed AS speed, payload.battery AS battery, payload.pos AS pos, timestamp AS ts
FROM "cars/+/telemetry"
INTO kafka.fleet (topic = 'telemetry', key = '${vin}', ack = 'after_sink');
