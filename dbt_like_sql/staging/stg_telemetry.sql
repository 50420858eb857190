-- Telemetry, typed and cleaned: one reading per asset, sensor and 15-minute bucket, with the asset's
-- class and site and the sensor's unit.
-- Readings carry a few seconds of jitter, so each is snapped to the NEAREST 15-minute bucket
-- (bucket_15min); when two readings land in one bucket the one closest to the bucket time is kept.
-- Readings with a missing or non-finite value are dropped. reading_ts keeps the original timestamp.
WITH readings AS (
    SELECT
        asset_id,
        sensor,
        ts AS reading_ts,
        value,
        time_bucket(INTERVAL 15 MINUTE, ts + INTERVAL 450 SECOND) AS bucket_15min
    FROM telemetry
    WHERE ts IS NOT NULL
      AND value IS NOT NULL
      AND isfinite(value)
),
nearest AS (
    SELECT *
    FROM readings
    QUALIFY row_number() OVER (
        PARTITION BY asset_id, sensor, bucket_15min
        ORDER BY abs(epoch(reading_ts) - epoch(bucket_15min)), reading_ts
    ) = 1
)
SELECT
    r.asset_id,
    a.equipment_class,
    a.site_id,
    r.sensor,
    s.unit,
    r.bucket_15min,
    date_trunc('hour', r.bucket_15min) AS hour,
    CAST(r.bucket_15min AS DATE) AS day,
    r.reading_ts,
    r.value
FROM nearest AS r
LEFT JOIN assets AS a ON a.asset_id = r.asset_id
LEFT JOIN sensors AS s ON s.asset_id = r.asset_id AND s.sensor = r.sensor
