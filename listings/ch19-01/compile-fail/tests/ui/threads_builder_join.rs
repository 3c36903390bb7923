use std::thread;

fn main() {
    let handle = thread::Builder::new()
        .name("downloader-1".to_string())
        .spawn(|| "ページ1の内容".to_string());

    let page = handle.join().unwrap();
    println!("{page}");
}
