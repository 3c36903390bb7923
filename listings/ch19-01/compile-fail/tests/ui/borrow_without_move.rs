use std::thread;

fn main() {
    let names = vec![String::from("A"), String::from("B")];

    let handle = thread::spawn(|| {
        for name in &names {
            println!("こんにちは、{name}さん");
        }
    });

    handle.join().unwrap();
}
