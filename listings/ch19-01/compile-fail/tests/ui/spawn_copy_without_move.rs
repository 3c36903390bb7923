use std::thread;
use std::time::Duration;

fn main() {
    let delay = Duration::from_millis(100); // `Duration`は`Copy`な型

    let handle = thread::spawn(|| {
        thread::sleep(delay);
    });

    handle.join().unwrap();
}
