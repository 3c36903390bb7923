use std::thread;
use std::time::Duration;

struct Counter {
    value: u64,
}

impl Counter {
    fn increment(&mut self) {
        let temp = self.value;
        thread::sleep(Duration::from_micros(100)); // ほかのスレッドに割り込む機会を与える
        self.value = temp + 1;
    }
}

fn main() {
    let mut counter = Counter { value: 0 };

    thread::scope(|s| {
        for _ in 0..10 {
            s.spawn(|| {
                for _ in 0..100 {
                    counter.increment();
                }
            });
        }
    });

    println!("期待値: 1000, 実際の値: {}", counter.value);
}
