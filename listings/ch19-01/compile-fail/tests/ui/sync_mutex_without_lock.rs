use std::sync::Mutex;

fn main() {
    let scores = Mutex::new(vec![80, 95]);

    // Pythonの`with lock:`を忘れたときのように、ロックせずに中身を触ろうとする
    scores.push(70);

    println!("{:?}", scores.lock().unwrap());
}
