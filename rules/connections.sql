-- Presence: every connect and disconnect is logged and published on fleet/presence/<clientid>
-- ("event" is client.connected or client.disconnected).
CREATE RULE connections AS
SELECT clientid, username, event, timestamp AS ts
FROM "$events/client_connected", "$events/client_disconnected"
INTO log (level = 'info', message = '${clientid} ${event}'),
     republish (topic = 'fleet/presence/${clientid}', qos = 1, retain = true);
