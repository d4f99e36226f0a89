-- New per-patient trend settings (rules_engine.profiles.TrendSetting): the weekly weight-gain limit and the ESH
-- home blood-pressure mean (limits, window, minimum readings). Also written by an activated plan (source 'plan').
ALTER TABLE trend_overrides DROP CONSTRAINT trend_overrides_setting_check;
ALTER TABLE trend_overrides ADD CONSTRAINT trend_overrides_setting_check CHECK (setting IN (
    'weight_gain_kg', 'weight_window_days', 'spo2_drop', 'pulse_drift', 'baseline_days', 'baseline_min_readings',
    'weight_week_gain_kg', 'bp_home_systolic', 'bp_home_diastolic', 'bp_home_days', 'bp_home_min_readings'));
