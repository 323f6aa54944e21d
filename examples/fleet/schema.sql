-- Tables the example rules (examples/fleet/rules/) insert into.
CREATE TABLE IF NOT EXISTS overspeed (
    vin   text NOT NULL,
    speed double precision NOT NULL,
    lat   double precision,
    ts    bigint NOT NULL,               -- the rule's `timestamp`: ms since the epoch, when the broker received it
    received_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS overspeed_vin_ts ON overspeed (vin, ts);
