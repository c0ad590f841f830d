//! The most any detector could catch of issue 24's decays by day 10, on `generate`'s model.
//!
//! `decay_bound` measures thresholds on the usage level. This asks the question for every
//! detector at once, through the Neyman-Pearson lemma: the likelihood-ratio test is the most
//! powerful test of "the decay began on day t0" against "nothing changed" at a given false
//! alarm rate. The test here is an oracle: it knows the subscriber's exact rates, the onset
//! day and the decay's shape, and reads every channel the journey changes (calls made and
//! received, SMS sent, data). A real rule knows none of these, estimates the rates from four
//! noisy weeks, and judges every day instead of once, so its power is lower still.
//!
//! The model is `generate`'s heavy user (src/tools/workload/population): calls made and
//! received are Poisson counts whose rates a week's factor (log-normal, sigma 0.15) scales
//! together; on a day an SMS is sent with a chance of 0.6 times the calls-made level (week
//! factor included, at most 1); a day's data is log-normal (sigma 0.8) around its mean,
//! scaled by its own week's factor; weekends shift the rates. The call lengths, the SMS
//! received, the charges and the hours are drawn apart from the journey, so they carry no
//! evidence of it. A decay moves each channel linearly to the level the journey reaches in
//! 21 days (calls moved to apps: calls to a tenth, data up a third; paid calls moved away:
//! calls made to a tenth, received up a half, data to a fifth; second data SIM: data to a
//! tenth, calls made up a fifth).
//!
//! The oracle sees the days from the start of the onset's calendar week to day `D - 1` after
//! the onset (a ticket `D` days after the onset, as `replay --journeys` counts the delay),
//! and integrates each week's unknown factor out of the likelihood. Its threshold is the
//! quantile of the ratio over subscribers with no journey.
//!
//! Beside it, a practical rule on calls moved to apps, judged every day as the rules are,
//! read once on call counts and once on voice seconds: how much of the gap between the rules
//! and the oracle would close if they read counts instead of minutes.
//!
//! ```sh
//! cargo bench --bench decay_oracle -- 200000   # subscribers without a journey; 105 s
//! ```
//!
//! Without arguments (as `cargo test --all-targets` runs it) it checks itself: the threshold
//! holds its false-alarm rate on fresh loyal subscribers, a fall past its end is caught, and
//! the practical rule's ratio reads two made-up series right.

use churnwatch::tools::workload::Rng;

const OUT_CALLS: f64 = 4.0;
const IN_CALLS: f64 = 3.0;
/// A heavy user's chance of sending an SMS on a day, times the day's calls-made level, at most 1.
const SMS: f64 = 0.6;
const WEEK_SIGMA: f64 = 0.15;
const DATA_SIGMA: f64 = 0.8;
const FALL_DAYS: f64 = 21.0;
/// The share of drop journeys that stop at once instead of falling; the rules catch them by day 7.
const STOPS: f64 = 0.3;
/// Weekend factors for calls made, received and data (a subscriber who is not a weekend caller).
const WEEKEND: [f64; 3] = [0.8, 0.9, 1.2];
/// A week's factor, integrated on a grid of its log.
const GRID: usize = 81;
/// The false-alarm rate the bound is read at: 1 loyal subscriber in 1,000.
const ALARM: f64 = 1e-3;

/// A drop journey: the levels calls made, calls received and data reach at the fall's end.
struct Journey {
    name: &'static str,
    reach: [f64; 3],
}

const JOURNEYS: [Journey; 3] = [
    Journey {
        name: "calls_moved_to_apps",
        reach: [0.1, 0.1, 1.3],
    },
    Journey {
        name: "paid_calls_moved_away",
        reach: [0.1, 1.5, 0.2],
    },
    Journey {
        name: "second_data_sim",
        reach: [1.2, 1.0, 0.1],
    },
];

/// The week factor's grid: its values and their normal weights.
struct Grid {
    factor: [f64; GRID],
    weight: [f64; GRID],
}

impl Grid {
    fn new() -> Grid {
        let z = |i: usize| -5.0 + 10.0 * i as f64 / (GRID - 1) as f64;
        let total: f64 = (0..GRID).map(|i| (-z(i) * z(i) / 2.0).exp()).sum();
        Grid {
            factor: std::array::from_fn(|i| (WEEK_SIGMA * z(i)).exp()),
            weight: std::array::from_fn(|i| (-z(i) * z(i) / 2.0).exp() / total),
        }
    }

    /// log of the mean over the week factor f of f^calls * exp(-f * rate) * exp(sms(f)), where
    /// `sms` holds the log-likelihood of the week's SMS days at each factor of the grid.
    fn log_mixed(&self, calls: f64, rate: f64, sms: &[f64; GRID]) -> f64 {
        let terms: Vec<f64> = self
            .factor
            .iter()
            .zip(sms)
            .map(|(f, s)| calls * f.ln() - f * rate + s)
            .collect();
        let top = terms.iter().copied().fold(f64::MIN, f64::max);
        let sum: f64 = terms
            .iter()
            .zip(self.weight)
            .map(|(t, w)| w * (t - top).exp())
            .sum();
        top + sum.ln()
    }
}

/// One day of the observed stretch: its rates without the journey, and the journey's factors.
struct Day {
    week: usize,
    mean: [f64; 3],
    level: [f64; 3],
    /// The calls-made weekend factor (1 on weekdays).
    weekend_out: f64,
    /// log P(no SMS sent [0], one sent [1]) at each week factor of the grid, without the
    /// journey [0] and with it [1].
    sms: [[[f64; GRID]; 2]; 2],
}

/// The chance of an SMS sent on a day, at week factor `f` and calls-made `level`.
fn sms_chance(f: f64, weekend_out: f64, level: f64) -> f64 {
    SMS * (f * weekend_out * level).min(1.0)
}

/// A channel's level `since` days after the onset (before it, 1), falling linearly to
/// `reach` in [`FALL_DAYS`].
fn level(reach: f64, since: f64) -> f64 {
    1.0 + (reach - 1.0) * (since / FALL_DAYS).clamp(0.0, 1.0)
}

/// The days from the start of the onset's calendar week (`weekday` days before the onset)
/// to `observed - 1` days after it.
fn stretch(grid: &Grid, j: &Journey, weekday: usize, observed: usize) -> Vec<Day> {
    (0..weekday + observed)
        .map(|d| {
            let weekend = d % 7 >= 5;
            let base = [OUT_CALLS, IN_CALLS, 1.0];
            let since = d as f64 - weekday as f64;
            let level: [f64; 3] = std::array::from_fn(|c| level(j.reach[c], since));
            let weekend_out = if weekend { WEEKEND[0] } else { 1.0 };
            let sms = std::array::from_fn(|planted| {
                let calls_made = if planted == 1 { level[0] } else { 1.0 };
                std::array::from_fn(|sent| {
                    std::array::from_fn(|g| {
                        let p = sms_chance(grid.factor[g], weekend_out, calls_made);
                        if sent == 1 { p } else { 1.0 - p }.ln()
                    })
                })
            });
            Day {
                week: d / 7,
                mean: std::array::from_fn(|c| base[c] * if weekend { WEEKEND[c] } else { 1.0 }),
                level,
                weekend_out,
                sms,
            }
        })
        .collect()
}

/// A subscriber's log-likelihood ratio, "the journey began on the onset" against "no
/// change", for one draw of their days (with the journey if `planted`).
fn log_ratio(grid: &Grid, days: &[Day], planted: bool, rng: &mut Rng) -> f64 {
    let weeks = days.last().map_or(0, |d| d.week + 1);
    let mut total = 0.0;
    for w in 0..weeks {
        let week: Vec<&Day> = days.iter().filter(|d| d.week == w).collect();
        let voice_factor = (WEEK_SIGMA * rng.normal()).exp();
        let data_factor = (WEEK_SIGMA * rng.normal()).exp();
        let (mut calls, mut rate_planted, mut rate_not, mut log_levels) = (0.0, 0.0, 0.0, 0.0);
        let (mut resid_planted, mut resid_not) = (Vec::new(), Vec::new());
        let mut sms = [[0.0; GRID]; 2];
        for d in &week {
            let truth = |c: usize| if planted { d.level[c] } else { 1.0 };
            for c in 0..2 {
                let n = f64::from(rng.poisson(d.mean[c] * voice_factor * truth(c)));
                calls += n;
                log_levels += n * d.level[c].ln();
                rate_planted += d.mean[c] * d.level[c];
                rate_not += d.mean[c];
            }
            let sent = usize::from(rng.chance(sms_chance(voice_factor, d.weekend_out, truth(0))));
            for (week_sms, day_sms) in sms.iter_mut().zip(&d.sms) {
                for (s, ln_p) in week_sms.iter_mut().zip(&day_sms[sent]) {
                    *s += ln_p;
                }
            }
            // log of the day's data against its mean without the journey.
            let r = (data_factor * truth(2)).ln() + DATA_SIGMA * rng.normal();
            resid_planted.push(r - d.level[2].ln());
            resid_not.push(r);
        }
        total += log_levels + grid.log_mixed(calls, rate_planted, &sms[1])
            - grid.log_mixed(calls, rate_not, &sms[0]);
        total += half_quadratic(&resid_not) - half_quadratic(&resid_planted);
    }
    total
}

/// Half the quadratic form of a week's log-data residuals under their covariance (each day's
/// own noise plus the week's shared factor): the part of the log-likelihood that differs.
fn half_quadratic(resid: &[f64]) -> f64 {
    let (s2, t2) = (DATA_SIGMA * DATA_SIGMA, WEEK_SIGMA * WEEK_SIGMA);
    let sum: f64 = resid.iter().sum();
    let squares: f64 = resid.iter().map(|r| r * r).sum();
    0.5 * (squares - t2 * sum * sum / (s2 + resid.len() as f64 * t2)) / s2
}

/// The log ratios of `n` subscribers, onsets spread over the weekdays.
fn draws(j: &Journey, observed: usize, planted: bool, n: usize, seed: u64) -> Vec<f64> {
    let grid = Grid::new();
    let stretches: Vec<Vec<Day>> = (0..7).map(|wd| stretch(&grid, j, wd, observed)).collect();
    let mut rng = Rng::new(seed);
    (0..n)
        .map(|i| log_ratio(&grid, &stretches[i % 7], planted, &mut rng))
        .collect()
}

/// `values` in ascending order.
fn sorted(mut values: Vec<f64>) -> Vec<f64> {
    values.sort_by(f64::total_cmp);
    values
}

/// The share of `planted` above the `1 - alarm` quantile of `loyal` (sorted).
fn power(loyal: &[f64], planted: &[f64], alarm: f64) -> f64 {
    let at = ((1.0 - alarm) * loyal.len() as f64) as usize;
    let threshold = loyal[at.min(loyal.len() - 1)];
    planted.iter().filter(|&&r| r > threshold).count() as f64 / planted.len() as f64
}

/// A practical rule beside the oracle: judged every day from day 40 of 120, the last 7 days'
/// mean against the 28 days' before it, on calls moved to apps. Its threshold flags 1 in
/// 1,000 loyal subscribers at least once; read on call counts or on voice seconds (calls of
/// log-normal length, mean 210 s, sigma 0.8, as the generator draws them).
const JUDGED_FROM: usize = 40;
const HORIZON: usize = 120;
const CALL_S: f64 = 210.0;
const CALL_SIGMA: f64 = 0.8;

/// Calls made and received, and voice seconds, per day; calls moved to apps from `onset`.
fn voice_days(onset: Option<usize>, rng: &mut Rng) -> [Vec<f64>; 2] {
    let reach = JOURNEYS[0].reach;
    let mut days = [Vec::with_capacity(HORIZON), Vec::with_capacity(HORIZON)];
    let mut factor = 1.0;
    for d in 0..HORIZON {
        if d % 7 == 0 {
            factor = (WEEK_SIGMA * rng.normal()).exp();
        }
        let since = onset.map_or(-1.0, |o| d as f64 - o as f64);
        let (mut calls, mut secs) = (0.0, 0.0);
        for (c, mean) in [OUT_CALLS, IN_CALLS].into_iter().enumerate() {
            let weekend = if d % 7 >= 5 { WEEKEND[c] } else { 1.0 };
            let n = rng.poisson(mean * weekend * factor * level(reach[c], since));
            calls += f64::from(n);
            secs += (0..n)
                .map(|_| rng.lognormal(CALL_S, CALL_SIGMA))
                .sum::<f64>();
        }
        days[0].push(calls);
        days[1].push(secs);
    }
    days
}

/// `(day, ratio)` for each judged day: the last 7 days' mean over the 28 before's.
fn ratios(x: &[f64]) -> impl Iterator<Item = (usize, f64)> + '_ {
    (JUDGED_FROM..x.len()).map(move |t| {
        let recent = x[t - 6..=t].iter().sum::<f64>() / 7.0;
        let usual = x[t - 34..t - 6].iter().sum::<f64>() / 28.0;
        (t, (recent + 0.1) / (usual + 0.1))
    })
}

/// The practical rule's journey median (its stops on day 7) on counts and on seconds.
fn practical(loyal_n: usize, planted_n: usize) -> [f64; 2] {
    let mut rng = Rng::new(99);
    let mut lows = [Vec::new(), Vec::new()];
    for _ in 0..loyal_n {
        let days = voice_days(None, &mut rng);
        for (low, x) in lows.iter_mut().zip(&days) {
            low.push(ratios(x).map(|(_, r)| r).fold(f64::MAX, f64::min));
        }
    }
    let threshold = lows.map(|low| sorted(low)[(ALARM * loyal_n as f64) as usize]);
    let mut delays = [Vec::new(), Vec::new()];
    for _ in 0..planted_n {
        let onset = rng.range(50, 80) as usize;
        let days = voice_days(Some(onset), &mut rng);
        for m in 0..2 {
            let caught = ratios(&days[m]).find(|&(t, r)| t >= onset && r < threshold[m]);
            delays[m].push(caught.map_or(f64::MAX, |(t, _)| (t + 1 - onset) as f64));
        }
    }
    let stops = (planted_n as f64 * STOPS / (1.0 - STOPS)).round() as usize;
    delays.map(|mut d| {
        d.extend(std::iter::repeat_n(7.0, stops));
        sorted(d)[(planted_n + stops) / 2]
    })
}

fn main() {
    // `cargo bench` adds `--bench`; `cargo test` runs it with no arguments.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let loyal_n: usize = match &args[..] {
        [] => return self_check(),
        [n] => n.parse().expect("number of loyal subscribers"),
        _ => panic!("usage: decay_oracle LOYAL_SUBSCRIBERS"),
    };
    let alarms = [ALARM, 1e-4];
    let days: Vec<usize> = (7..=21).collect();
    println!(
        "share of three-week decays the oracle catches D days after the onset, at a false \
         alarm rate of 1 in 1,000 and 1 in 10,000 loyal subscribers ({loyal_n} drawn)"
    );
    println!("{:32} {}", "D", joined(&days, |d| format!("{d:>5}")));
    for (ji, j) in JOURNEYS.iter().enumerate() {
        let mut shares = vec![Vec::new(); alarms.len()];
        for &observed in &days {
            let seed = (ji * 100 + observed) as u64;
            let loyal = sorted(draws(j, observed, false, loyal_n, seed << 1));
            let planted = draws(j, observed, true, 20_000, seed << 1 | 1);
            for (a, &alarm) in alarms.iter().enumerate() {
                shares[a].push(power(&loyal, &planted, alarm));
            }
        }
        for (a, alarm) in alarms.iter().enumerate() {
            // The journey's median, with its stops (STOPS of them) caught by day 7.
            let median = days
                .iter()
                .zip(&shares[a])
                .find(|(_, &p)| STOPS + (1.0 - STOPS) * p >= 0.5)
                .map_or("over 21".to_string(), |(d, _)| d.to_string());
            println!(
                "{:22} 1 in {:<6} {}   median {median} days",
                j.name,
                (1.0 / alarm).round(),
                joined(&shares[a], |p| format!("{p:5.3}")),
            );
        }
    }
    let [counts, secs] = practical(20_000, 4_000);
    println!(
        "calls_moved_to_apps, a practical rule (every day, 7 days against the 28 before, 1 in \
         1,000 loyal subscribers flagged): median {counts} days on call counts, {secs} on voice \
         seconds"
    );
}

fn joined<T>(items: &[T], f: impl Fn(&T) -> String) -> String {
    items.iter().map(f).collect::<Vec<_>>().join(" ")
}

fn self_check() {
    let j = &JOURNEYS[0];
    // The threshold set on one loyal sample holds its rate on another.
    let loyal = sorted(draws(j, 10, false, 20_000, 1));
    let fresh = draws(j, 10, false, 20_000, 2);
    let rate = power(&loyal, &fresh, 0.01);
    assert!((0.005..0.02).contains(&rate), "false alarms {rate}");
    // Past the fall's end, calls at a tenth for a week: the oracle catches nearly every one.
    let planted = draws(j, 28, true, 2_000, 3);
    let loyal = sorted(draws(j, 28, false, 20_000, 4));
    let caught = power(&loyal, &planted, 1e-3);
    assert!(caught > 0.95, "caught {caught}");
    // One day alone: its residual's variance is the day's noise and the week's, added.
    let one = half_quadratic(&[0.5]);
    let s2 = DATA_SIGMA * DATA_SIGMA + WEEK_SIGMA * WEEK_SIGMA;
    assert!((one - 0.25 / s2 / 2.0).abs() < 1e-12, "{one}");
    // The practical rule's ratio: a steady series reads 1, one that halves reads half.
    assert!(ratios(&[10.0; HORIZON]).all(|(_, r)| (r - 1.0).abs() < 1e-12));
    let halves: Vec<f64> = (0..HORIZON)
        .map(|d| if d >= 60 { 5.0 } else { 10.0 })
        .collect();
    let week_after = ratios(&halves).find(|&(t, _)| t == 66).map(|(_, r)| r);
    assert_eq!(week_after, Some(5.1 / 10.1));
    println!("decay_oracle: self-check ok (false alarms {rate:.4} at 0.01, caught {caught:.3})");
}
