-- Work orders per asset and calendar month (by finish date): preventive and corrective counts, urgent
-- work (priority 1-2), labour hours split by kind, and mean elapsed duration.
SELECT
    asset_id,
    asset_name,
    equipment_class,
    site_id,
    month_start,
    finished_year,
    finished_month,
    count(*) AS work_orders,
    count(*) FILTER (WHERE preventive) AS preventive_count,
    count(*) FILTER (WHERE corrective) AS corrective_count,
    count(*) FILTER (WHERE priority <= 2) AS urgent_count,
    coalesce(sum(labor_hours), 0) AS labor_hours,
    coalesce(sum(labor_hours) FILTER (WHERE preventive), 0) AS preventive_labor_hours,
    coalesce(sum(labor_hours) FILTER (WHERE corrective), 0) AS corrective_labor_hours,
    avg(duration_hours) AS mean_duration_hours,
    count(*) FILTER (WHERE corrective) / count(*) AS corrective_share
FROM stg_work_orders
GROUP BY asset_id, asset_name, equipment_class, site_id, month_start, finished_year, finished_month
