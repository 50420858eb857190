-- Hourly telemetry per asset and sensor: mean, minimum, maximum and number of 15-minute readings in the
-- hour (at most 4; fewer where the feed had gaps). Built on stg_telemetry, so jittered readings are
-- already snapped to their 15-minute bucket and duplicates removed.
SELECT
    asset_id,
    equipment_class,
    site_id,
    sensor,
    unit,
    hour,
    avg(value) AS avg_value,
    min(value) AS min_value,
    max(value) AS max_value,
    count(*) AS reading_count
FROM stg_telemetry
GROUP BY asset_id, equipment_class, site_id, sensor, unit, hour
