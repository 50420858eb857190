-- Assets joined to their sites: one row per asset with site name, city and time zone, the number of
-- sensors it carries, and its age in years at the world's "now" (world_meta key 'now').
WITH world_now AS (
    SELECT max(TRY_CAST(value AS TIMESTAMP)) AS now_ts
    FROM world_meta
    WHERE key = 'now'
),
sensor_counts AS (
    SELECT asset_id, count(*) AS sensor_count, count(*) FILTER (WHERE calculated) AS calculated_sensor_count
    FROM sensors
    GROUP BY asset_id
)
SELECT
    a.asset_id,
    a.name AS asset_name,
    a.equipment_class,
    a.site_id,
    s.name AS site_name,
    s.city,
    s.timezone,
    a.install_date,
    a.manufacturer,
    a.model,
    a.capacity,
    a.capacity_unit,
    coalesce(sc.sensor_count, 0) AS sensor_count,
    coalesce(sc.calculated_sensor_count, 0) AS calculated_sensor_count,
    round(date_diff('day', a.install_date, CAST(w.now_ts AS DATE)) / 365.25, 2) AS age_years
FROM assets AS a
LEFT JOIN sites AS s ON s.site_id = a.site_id
LEFT JOIN sensor_counts AS sc ON sc.asset_id = a.asset_id
CROSS JOIN world_now AS w
