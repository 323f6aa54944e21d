-- Battery under 10 %: a POST to the partner's webhook, one per message, at /hooks/battery/<vin>.
CREATE RULE partner_alerts AS
SELECT clientid AS vin, payload.battery AS battery, payload.pos.lat AS lat, payload.pos.lon AS lon
FROM "cars/+/telemetry"
WHERE payload.battery < 10
INTO webhook.crm (method = 'POST', path = '/battery/${vin}', body = '${.}');
