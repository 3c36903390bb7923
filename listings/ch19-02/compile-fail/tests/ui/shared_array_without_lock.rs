use std::sync::Arc;
use std::thread;

fn main() {
    let shared_array = Arc::new(vec![1.0, 2.0, 3.0, 4.0]);

    let handles: Vec<_> = (1..=3)
        .map(|index| {
            let shared_array = Arc::clone(&shared_array);
            thread::spawn(move || {
                for i in 0..shared_array.len() {
                    shared_array[i] += f64::from(index); // ロックなしで書き換えようとする
                }
            })
        })
        .collect();

    for handle in handles {
        handle.join().unwrap();
    }
}
