-- Mean time between failures per asset, from corrective work orders (a corrective work order is taken as
-- one failure, at its finish time). Every asset appears; assets with fewer than two failures have no
-- gap-based MTBF.
--   mtbf_days: mean gap between consecutive failures, in days.
--   median_days_between_failures: the median of those gaps (robust to bursts of repeat repairs).
--   history_mtbf_days: days of maintenance history (first work order of any kind to the world's "now")
--     divided by the number of failures: defined as soon as there is one failure.
WITH world_now AS (
    SELECT max(TRY_CAST(value AS TIMESTAMP)) AS now_ts
    FROM world_meta
    WHERE key = 'now'
),
history AS (
    SELECT asset_id, min(finished_at) AS first_work_order_at, max(finished_at) AS last_work_order_at
    FROM stg_work_orders
    GROUP BY asset_id
),
failures AS (
    SELECT
        asset_id,
        finished_at,
        date_diff('second', lag(finished_at) OVER (PARTITION BY asset_id ORDER BY finished_at, wo_id), finished_at)
            / 86400.0 AS days_since_previous_failure
    FROM stg_work_orders
    WHERE corrective
),
per_asset AS (
    SELECT
        asset_id,
        count(*) AS failure_count,
        min(finished_at) AS first_failure_at,
        max(finished_at) AS last_failure_at,
        avg(days_since_previous_failure) AS mtbf_days,
        median(days_since_previous_failure) AS median_days_between_failures
    FROM failures
    GROUP BY asset_id
)
SELECT
    a.asset_id,
    a.asset_name,
    a.equipment_class,
    a.site_id,
    coalesce(f.failure_count, 0) AS failure_count,
    f.first_failure_at,
    f.last_failure_at,
    f.mtbf_days,
    f.median_days_between_failures,
    h.first_work_order_at,
    date_diff('second', h.first_work_order_at, greatest(coalesce(w.now_ts, h.last_work_order_at), h.last_work_order_at))
        / 86400.0 AS history_days,
    CASE
        WHEN coalesce(f.failure_count, 0) > 0
        THEN date_diff('second', h.first_work_order_at, greatest(coalesce(w.now_ts, h.last_work_order_at), h.last_work_order_at))
            / 86400.0 / f.failure_count
    END AS history_mtbf_days,
    date_diff('second', f.last_failure_at, w.now_ts) / 86400.0 AS days_since_last_failure
FROM stg_assets AS a
LEFT JOIN per_asset AS f ON f.asset_id = a.asset_id
LEFT JOIN history AS h ON h.asset_id = a.asset_id
CROSS JOIN world_now AS w
