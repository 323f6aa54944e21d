-- Presence: every connect and disconnect is logged and published on $fleet/presence/<clientid>
-- ("event" is client.connected or client.disconnected). Not retained, and under a '$' topic,
-- which '#' and '+/…' subscriptions do not match [MQTT-4.7.2-1]: only a client that subscribes
-- to $fleet/presence/… sees these, and nothing is left behind per client.
CREATE RULE connections AS
SELECT clientid, username, event, timestamp AS ts
FROM "$events/client_connected", "$events/client_disconnected"
INTO log (level = 'info', message = '${clientid} ${event}'),
     republish (topic = '$fleet/presence/${clientid}', qos = 1);
