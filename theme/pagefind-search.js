// 日本語で検索できるように、mdBookの検索の代わりにPagefindの検索UIを置きます。
//
// mdBook自身の検索インデックスは空白で単語を区切るので、日本語の本文では何も見つかりません。
// `cargo xtask build`／`cargo xtask serve`は、ICUで日本語を単語に分けるPagefindの索引を
// `pagefind/`に書き出します。このスクリプトはその索引があるときだけ検索ボタンを出します
// （`mdbook serve`で読むときなど索引がなければ、何も足しません）。
(function () {
    "use strict";
    const root = typeof path_to_root === "string" ? path_to_root : "";
    // 本のルートの絶対パス。本がサブパス（例: https://example.github.io/book/）に置かれても、
    // 索引の場所と結果のURLが正しくなるように、各ページの`path_to_root`から求めます。
    // （相対パスのままだと、pagefind-ui.jsの中の動的importがそのスクリプトの位置から解決してしまいます。）
    const baseUrl = new URL(root || "./", location.href).pathname;
    const bundle = baseUrl + "pagefind/";
    const icon =
        '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24" width="20" height="20" aria-hidden="true">' +
        '<circle cx="10.5" cy="10.5" r="6.5" fill="none" stroke="currentColor" stroke-width="2.2"/>' +
        '<line x1="15.5" y1="15.5" x2="21" y2="21" stroke="currentColor" stroke-width="2.4" stroke-linecap="round"/></svg>';

    function load(tag, attrs) {
        return new Promise(function (resolve, reject) {
            const el = document.createElement(tag);
            Object.assign(el, attrs);
            el.onload = resolve;
            el.onerror = reject;
            document.head.appendChild(el);
        });
    }

    let ui = null;
    let panel = null;
    let button = null;

    function setOpen(open) {
        panel.hidden = !open;
        button.setAttribute("aria-expanded", String(open));
        if (open) {
            const input = panel.querySelector("input");
            if (input) input.focus();
        }
    }

    function openWith(term) {
        setOpen(true);
        if (term) ui.triggerSearch(term);
    }

    async function init() {
        const probe = await fetch(bundle + "pagefind-ui.js", { method: "HEAD" }).catch(() => null);
        if (!probe || !probe.ok) return; // 索引がない（mdbook serveなど）
        await load("link", { rel: "stylesheet", href: bundle + "pagefind-ui.css" });
        await load("script", { src: bundle + "pagefind-ui.js" });

        const buttons = document.querySelector("#mdbook-menu-bar .left-buttons");
        const menuBar = document.getElementById("mdbook-menu-bar");
        if (!buttons || !menuBar) return;

        button = document.createElement("button");
        button.id = "pagefind-toggle";
        button.className = "icon-button";
        button.type = "button";
        button.title = "本文を検索（S または /）";
        button.setAttribute("aria-label", "本文を検索");
        button.setAttribute("aria-expanded", "false");
        button.setAttribute("aria-keyshortcuts", "s /");
        button.setAttribute("aria-controls", "pagefind-panel");
        button.innerHTML = icon;
        buttons.appendChild(button);

        panel = document.createElement("div");
        panel.id = "pagefind-panel";
        panel.hidden = true;
        menuBar.insertAdjacentElement("afterend", panel);

        ui = new PagefindUI({
            element: "#pagefind-panel",
            bundlePath: bundle,
            baseUrl: baseUrl,
            showImages: false,
            showSubResults: true,
            resetStyles: false,
            // 索引はローカルにあり検索は速いので、入力の途中でも素早く結果を出します（既定は300ミリ秒）。
            debounceTimeoutMs: 100,
        });

        button.addEventListener("click", function () {
            setOpen(panel.hidden);
        });
        document.addEventListener("keydown", function (e) {
            if (e.altKey || e.ctrlKey || e.metaKey) return;
            const typing = /^(INPUT|TEXTAREA|SELECT)$/.test(document.activeElement.tagName);
            if (e.key === "Escape" && !panel.hidden) {
                setOpen(false);
                button.focus();
            } else if (!typing && (e.key === "s" || e.key === "S" || e.key === "/")) {
                e.preventDefault();
                setOpen(true);
            }
        });

        // mdBookと同じく ?search=語 のリンクで検索結果を開けるようにします。
        const term = new URLSearchParams(location.search).get("search");
        if (term) openWith(term);
    }

    init();
})();
