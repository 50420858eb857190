-- Air-handling-unit health KPIs per AHU and day, over the 15-minute readings of stg_telemetry
-- (temperatures in degF, power in kW, pressures in inH2O, airflow in CFM). Control KPIs are averaged over
-- buckets where the supply fan runs (Supply Fan Status >= 0.5; where it is missing, Supply Fan Power above 0.1 kW).
--   mean_supply_air_temp_deviation: Supply Air Temperature - Supply Air Temperature Setpoint (signed; a
--     stuck cooling valve or a fouled coil drives it positive).
--   mean_abs_supply_air_temp_deviation and pct_time_off_setpoint (|deviation| > 2 degF, % of running time).
--   mean_fan_power_kw, fan_energy_kwh, mean_fan_speed_pct.
--   specific_fan_power_w_per_cfm: 1000 * Supply Fan Power / Supply Airflow (rises as filters load).
--   mean_filter_dp (while running) / max_filter_dp: Filter Differential Pressure (change filters near
--     1.0 inH2O; a stopped fan reads about 0).
--   mean_duct_static_deviation: Duct Static Pressure - Duct Static Pressure Setpoint.
WITH wide AS (
    SELECT
        asset_id,
        site_id,
        day,
        bucket_15min,
        max(value) FILTER (WHERE sensor = 'Supply Air Temperature') AS supply_air_temp,
        max(value) FILTER (WHERE sensor = 'Supply Air Temperature Setpoint') AS supply_air_setpoint,
        max(value) FILTER (WHERE sensor = 'Supply Fan Power') AS fan_power_kw,
        max(value) FILTER (WHERE sensor = 'Supply Fan Speed') AS fan_speed_pct,
        max(value) FILTER (WHERE sensor = 'Supply Airflow') AS airflow_cfm,
        max(value) FILTER (WHERE sensor = 'Filter Differential Pressure') AS filter_dp,
        max(value) FILTER (WHERE sensor = 'Duct Static Pressure') AS duct_static,
        max(value) FILTER (WHERE sensor = 'Duct Static Pressure Setpoint') AS duct_static_setpoint,
        max(value) FILTER (WHERE sensor = 'Supply Fan Status') AS fan_status
    FROM stg_telemetry
    WHERE equipment_class = 'AHU'
    GROUP BY asset_id, site_id, day, bucket_15min
),
states AS (
    SELECT
        *,
        coalesce(fan_status >= 0.5, fan_power_kw > 0.1, false) AS running,
        supply_air_temp - supply_air_setpoint AS supply_air_temp_deviation
    FROM wide
)
SELECT
    s.asset_id,
    a.asset_name,
    s.site_id,
    s.day,
    count(*) AS buckets_with_data,
    count(*) FILTER (WHERE running) * 0.25 AS run_hours,
    avg(supply_air_temp_deviation) FILTER (WHERE running) AS mean_supply_air_temp_deviation,
    avg(abs(supply_air_temp_deviation)) FILTER (WHERE running) AS mean_abs_supply_air_temp_deviation,
    100.0 * count(*) FILTER (WHERE running AND abs(supply_air_temp_deviation) > 2)
        / nullif(count(supply_air_temp_deviation) FILTER (WHERE running), 0) AS pct_time_off_setpoint,
    avg(fan_power_kw) FILTER (WHERE running) AS mean_fan_power_kw,
    coalesce(sum(fan_power_kw), 0) * 0.25 AS fan_energy_kwh,
    avg(fan_speed_pct) FILTER (WHERE running) AS mean_fan_speed_pct,
    1000.0 * sum(fan_power_kw) FILTER (WHERE running AND airflow_cfm > 0)
        / nullif(sum(airflow_cfm) FILTER (WHERE running AND airflow_cfm > 0 AND fan_power_kw IS NOT NULL), 0)
        AS specific_fan_power_w_per_cfm,
    avg(filter_dp) FILTER (WHERE running) AS mean_filter_dp,
    max(filter_dp) AS max_filter_dp,
    avg(duct_static - duct_static_setpoint) FILTER (WHERE running) AS mean_duct_static_deviation
FROM states AS s
LEFT JOIN stg_assets AS a ON a.asset_id = s.asset_id
GROUP BY s.asset_id, a.asset_name, s.site_id, s.day
