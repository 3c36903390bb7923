use std::cell::RefCell;
use std::sync::Arc;
use std::thread;

struct Counter {
    value: u64,
}

impl Counter {
    fn increment(&mut self) {
        self.value += 1;
    }
}

fn main() {
    // Pythonのオブジェクトのように、どこからでも参照でき、どこからでも書き換えられるカウンタ
    let counter = Arc::new(RefCell::new(Counter { value: 0 }));

    let mut handles = Vec::new();
    for _ in 0..10 {
        let counter = Arc::clone(&counter);
        handles.push(thread::spawn(move || {
            for _ in 0..100 {
                counter.borrow_mut().increment();
            }
        }));
    }
    for handle in handles {
        handle.join().unwrap();
    }

    println!("期待値: 1000, 実際の値: {}", counter.borrow().value);
}
