//! 分散の方法: 次のタスクをどのワーカーに渡すか。

use clap::ValueEnum;

// ANCHOR: strategy
/// どのワーカーに次のタスクを渡すか。
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Strategy {
    /// 順番に回す。負荷は見ず、次の番のワーカーが満杯なら空くまで待つ
    RoundRobin,
    /// 抱えているタスクがいちばん少ないワーカー
    LeastOutstanding,
    /// ランダムに2つ選び、抱えているタスクが少ないほう
    PowerOfTwo,
}

pub struct Picker {
    strategy: Strategy,
    next: usize, // ラウンドロビンの次の番
    rng: fastrand::Rng,
}

impl Picker {
    pub fn new(strategy: Strategy, rng: fastrand::Rng) -> Picker {
        Picker {
            strategy,
            next: 0,
            rng,
        }
    }

    /// `loads[i]`はワーカー`i`が抱えているタスクの数（止まっていれば`None`）です。
    /// 渡せるワーカーがなければ`None`を返し、ディスパッチャは入力を読むのを待ちます（背圧）。
    pub fn pick(&mut self, loads: &[Option<usize>], limit: usize) -> Option<usize> {
        let has_room = |i: usize| loads[i].is_some_and(|n| n < limit);
        match self.strategy {
            Strategy::RoundRobin => {
                // 止まっているワーカーは飛ばしますが、満杯のワーカーは飛ばしません
                let turn = (0..loads.len())
                    .map(|k| (self.next + k) % loads.len())
                    .find(|&i| loads[i].is_some())?;
                has_room(turn).then_some(turn)
            }
            Strategy::LeastOutstanding => (0..loads.len())
                .filter(|&i| has_room(i))
                .min_by_key(|&i| loads[i]),
            Strategy::PowerOfTwo => {
                let candidates = (0..loads.len()).filter(|&i| has_room(i));
                let two = self.rng.choose_multiple(candidates, 2);
                two.into_iter().min_by_key(|&i| loads[i])
            }
        }
    }

    /// ワーカー`i`にタスクを渡したことを記録します。
    pub fn dispatched(&mut self, i: usize, workers: usize) {
        self.next = (i + 1) % workers;
    }
}
// ANCHOR_END: strategy

#[cfg(test)]
mod tests {
    use super::*;

    fn picker(strategy: Strategy) -> Picker {
        Picker::new(strategy, fastrand::Rng::with_seed(7))
    }

    #[test]
    fn round_robin_takes_turns_and_waits_for_a_full_worker() {
        let mut p = picker(Strategy::RoundRobin);
        let loads = [Some(0), Some(0), Some(0)];
        let mut order = Vec::new();
        for _ in 0..4 {
            let i = p.pick(&loads, 2).unwrap();
            p.dispatched(i, 3);
            order.push(i);
        }
        assert_eq!(order, [0, 1, 2, 0]);
        // 次の番（1）が満杯なら、ほかが空いていても待ちます
        assert_eq!(p.pick(&[Some(0), Some(2), Some(0)], 2), None);
        // 止まっているワーカーは飛ばします
        assert_eq!(p.pick(&[Some(0), None, Some(0)], 2), Some(2));
    }

    #[test]
    fn least_outstanding_picks_the_emptiest_running_worker() {
        let mut p = picker(Strategy::LeastOutstanding);
        assert_eq!(p.pick(&[Some(3), Some(1), None, Some(2)], 4), Some(1));
        assert_eq!(p.pick(&[Some(4), None], 4), None);
    }

    #[test]
    fn power_of_two_never_picks_a_full_or_stopped_worker() {
        let mut p = picker(Strategy::PowerOfTwo);
        let loads = [Some(4), Some(1), None, Some(3), Some(0)];
        for _ in 0..200 {
            let i = p.pick(&loads, 4).unwrap();
            assert!([1, 3, 4].contains(&i), "{i}");
        }
        assert_eq!(p.pick(&[Some(4), None], 4), None);
        assert_eq!(p.pick(&[Some(4), Some(2)], 4), Some(1));
    }
}
