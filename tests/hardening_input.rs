//! Memory and time limits on what clients send and read, over real sockets against the
//! real server (protocol-spec/limits.md): literals are checked before they are read, all
//! connections together hold at most the literal budget, a stalled literal or reply is cut
//! off while a slow but steady one is not, and pipelined downloads of a large attachment
//! keep the server's memory bounded. Each test prints the figures RELIABILITY.md records.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};
use support::{Client, Server};

/// The server's resident memory in KiB (VmRSS).
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

fn wait_for_log(server: &Server, text: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !server.log().contains(text) {
        assert!(
            Instant::now() < deadline,
            "log lacks {text:?}:\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Bytes that differ at every position (xorshift), so a lost or repeated chunk shows.
fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// An admin connection with project 1, folder 1 and issue 1 to attach files to.
fn admin_with_issue(server: &Server) -> Client {
    let mut admin = server.admin();
    assert_eq!(admin.id("ADD PROJECT 'Backend'"), 1);
    assert_eq!(admin.id("ADD FOLDER 1 1 'Bugs'"), 1);
    assert_eq!(admin.id("ADD ISSUE 1 'Crash'"), 1);
    admin
}

/// Uploads `data` to issue 1 and returns the attachment id.
fn upload(c: &mut Client, data: &[u8]) -> i64 {
    c.write_raw(format!("ADD ATTACHMENT 1 'f.bin' '' {{{}}}\n", data.len()).as_bytes());
    c.write_raw(data);
    let r = c.read_reply();
    assert_eq!(r.len(), 1, "{r:?}");
    r[0].strip_prefix("ID ")
        .unwrap_or_else(|| panic!("upload answered {r:?}"))
        .parse()
        .unwrap()
}

/// Reads one `GET ATTACHMENT` reply's bytes from a raw reader.
fn read_data(r: &mut impl BufRead) -> Vec<u8> {
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    let size: usize = line
        .trim_end()
        .strip_prefix("DATA ")
        .unwrap_or_else(|| panic!("expected DATA, got {line:?}"))
        .parse()
        .unwrap();
    let mut data = vec![0; size];
    r.read_exact(&mut data).unwrap();
    let mut end = [0; 4];
    r.read_exact(&mut end).unwrap();
    assert_eq!(&end, b"\r\n\r\n");
    data
}

#[test]
fn unauthenticated_literals_are_refused_without_being_buffered() {
    let server = Server::start();
    let mut admin = admin_with_issue(&server);
    let before = rss_kib(server.pid());
    // 100 connections that never log in each announce a 16 MB literal and send 1 MiB of
    // it: before the fix each buffered what it sent (and reserved room for all of it).
    let size = 16_000_000;
    let chunk = vec![b'x'; 1 << 20];
    let mut slowest = Duration::ZERO;
    let mut held = Vec::new();
    for _ in 0..100 {
        let mut c = server.connect();
        let started = Instant::now();
        c.write_raw(format!("ADD ATTACHMENT 1 'a' '' {{{size}}}\n").as_bytes());
        // Answered when announced, before any of the bytes are sent.
        assert_eq!(c.read_reply(), ["ERROR 300 'Login Required'"]);
        slowest = slowest.max(started.elapsed());
        c.write_raw(&chunk);
        held.push(c);
    }
    std::thread::sleep(Duration::from_millis(500));
    let during = rss_kib(server.pid());
    let grew = during.saturating_sub(before);
    eprintln!(
        "100 unauthenticated 16 MB literals (1 MiB sent each): server RSS {before} -> \
         {during} KiB (+{grew} KiB), slowest refusal {slowest:?}"
    );
    assert!(grew < 40 * 1024, "server RSS grew by {grew} KiB");
    assert!(slowest < Duration::from_secs(2), "{slowest:?}");
    // Others are served meanwhile, and a refused connection is usable once its bytes are in.
    assert!(admin.one("HELLO").starts_with("SERVER "));
    let mut c = held.pop().unwrap();
    let rest = size - chunk.len();
    let mut tail = vec![b'Q'; rest];
    tail[..6].copy_from_slice(b"QUIT\r\n"); // inside the literal: never run
    c.write_raw(&tail);
    assert!(c.one("HELLO").starts_with("SERVER "));
    // Nothing was stored.
    assert_eq!(
        std::fs::read_dir(server.data_dir().join("attachments"))
            .map(|d| d.count())
            .unwrap_or(0),
        0
    );
}

#[test]
fn data_on_a_command_that_takes_none_is_refused_and_the_connection_stays_usable() {
    let server = Server::start();
    let mut admin = admin_with_issue(&server);
    let before = rss_kib(server.pid());
    admin.write_raw(b"HELLO {8000000}\n");
    assert_eq!(
        admin.read_reply(),
        ["ERROR 402 'Invalid Arguments: only ADD ATTACHMENT takes data'"]
    );
    // The bytes look like commands; they are skipped, not run.
    let data = "QUIT\r\nDELETE PROJECT 1\r\n".repeat(8_000_000 / 24 + 1);
    admin.write_raw(&data.as_bytes()[..8_000_000]);
    let grew = rss_kib(server.pid()).saturating_sub(before);
    assert!(grew < 4 * 1024, "server RSS grew by {grew} KiB");
    assert!(admin.one("HELLO").starts_with("SERVER "));
    // A command line that is invalid by itself is refused before its data too.
    admin.write_raw(b"ADD ATTACHMENT 1 '' '' {5}\n");
    assert!(admin.read_reply()[0].starts_with("ERROR 340 "));
    admin.write_raw(b"abcde");
    admin.write_raw(b"LIST USERS {3}\nxyz");
    assert!(admin.read_reply()[0].starts_with("ERROR 402 "));
    assert_eq!(admin.one("FIND ITEM 1"), "ID 1");
    // The project was not deleted by the skipped bytes.
    assert!(admin.send("LIST PROJECTS")[0].starts_with("P 1 'Backend'"));
    eprintln!("8 MB of data on HELLO skipped: server RSS +{grew} KiB");
}

#[test]
fn the_literal_budget_gives_a_clear_error_when_spent() {
    let server = Server::start_with("[limits]\nliteral_memory_bytes = 1000000\n");
    let mut first = admin_with_issue(&server);
    let mut second = server.admin();
    let a = pattern(800_000, 1);
    let b = pattern(300_000, 2);
    // The first upload holds 800 000 of the 1 000 000 bytes while it arrives.
    first.write_raw(b"ADD ATTACHMENT 1 'a.bin' '' {800000}\n");
    first.write_raw(&a[..400_000]);
    std::thread::sleep(Duration::from_millis(200));
    second.write_raw(b"ADD ATTACHMENT 1 'b.bin' '' {300000}\n");
    assert_eq!(
        second.read_reply(),
        ["ERROR 403 'Upload Error: the server is receiving too many uploads; try again later'"]
    );
    second.write_raw(&b); // skipped
    assert!(second.one("HELLO").starts_with("SERVER "));
    // The first upload finishes; its bytes go back to the budget.
    first.write_raw(&a[400_000..]);
    let id_a = first.read_reply();
    assert!(id_a[0].starts_with("ID "), "{id_a:?}");
    let id_b = upload(&mut second, &b);
    second.write_raw(format!("GET ATTACHMENT {id_b}\n").as_bytes());
    let mut raw = BufReader::new(second.stream().try_clone().unwrap());
    assert!(
        read_data(&mut raw) == b,
        "the retried upload stored other bytes"
    );
    wait_for_log(&server, "literal refused: memory budget spent");
}

#[test]
fn a_stalled_or_dripping_literal_times_out_while_a_steady_one_does_not() {
    let server = Server::start_with("[limits]\nline_timeout_secs = 1\n");
    let mut admin = admin_with_issue(&server);
    let expected = "ERROR 408 'Idle Timeout: data stalled: under 1024 bytes/s, or none for 1 s'";
    // Stalled: 10 bytes, then nothing.
    let mut stalled = server.admin();
    let started = Instant::now();
    stalled.write_raw(b"ADD ATTACHMENT 1 'a' '' {100000}\n0123456789");
    assert_eq!(stalled.read_reply(), [expected]);
    assert!(stalled.is_closed());
    let stall_took = started.elapsed();
    // Dripping: a byte every 200 ms is progress, but far under the rate; before, each
    // byte restarted the clock and the connection was held forever.
    let mut drip = server.connect();
    drip.write_raw(b"ADD ATTACHMENT 1 'a' '' {100000}\n");
    assert_eq!(drip.read_reply(), ["ERROR 300 'Login Required'"]);
    let mut writer = drip.stream().try_clone().unwrap();
    let started = Instant::now();
    let dripper = std::thread::spawn(move || {
        for _ in 0..50 {
            if writer.write_all(b"x").is_err() {
                break;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    });
    assert_eq!(drip.read_reply(), [expected]);
    let drip_took = started.elapsed();
    dripper.join().unwrap();
    // Steady: 4 KiB every 100 ms (40 KiB/s) for 3 s, three times the timeout in all.
    let data = pattern(120 * 1024, 3);
    admin.write_raw(format!("ADD ATTACHMENT 1 's.bin' '' {{{}}}\n", data.len()).as_bytes());
    let started = Instant::now();
    for piece in data.chunks(4096) {
        admin.write_raw(piece);
        std::thread::sleep(Duration::from_millis(100));
    }
    let r = admin.read_reply();
    assert!(r[0].starts_with("ID "), "{r:?}");
    let steady_took = started.elapsed();
    eprintln!(
        "literal timeout 1 s: stalled closed after {stall_took:?}, 5 B/s drip after \
         {drip_took:?}, 40 KiB/s upload completed in {steady_took:?}"
    );
    assert!(stall_took < Duration::from_secs(3), "{stall_took:?}");
    assert!(drip_took < Duration::from_secs(3), "{drip_took:?}");
    assert!(steady_took > Duration::from_secs(2), "{steady_took:?}");
    wait_for_log(&server, "literal timeout: data stalled");
}

#[test]
fn pipelined_downloads_of_a_large_attachment_keep_memory_bounded() {
    let server = Server::start();
    let mut admin = admin_with_issue(&server);
    let data = pattern(16 << 20, 4);
    let id = upload(&mut admin, &data);
    std::thread::sleep(Duration::from_millis(300));
    let before = rss_kib(server.pid());
    // 64 requests at once: before, each reply was read and encoded whole (about 1 GiB).
    let stream = TcpStream::connect(server.addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut c = Client::from_stream(stream.try_clone().unwrap());
    c.login("admin", support::ADMIN_PASSWORD);
    let requests = format!("GET ATTACHMENT {id}\n").repeat(64);
    (&stream).write_all(requests.as_bytes()).unwrap();
    let pid = server.pid();
    let peak = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(before));
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = {
        let (peak, done) = (peak.clone(), done.clone());
        std::thread::spawn(move || {
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                peak.fetch_max(rss_kib(pid), std::sync::atomic::Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    let started = Instant::now();
    let mut reader = BufReader::with_capacity(1 << 16, stream);
    for i in 0..64 {
        if i == 0 {
            // Let the server run ahead until the socket buffers are full.
            std::thread::sleep(Duration::from_millis(500));
        }
        let got = read_data(&mut reader);
        assert!(got == data, "download {i} differs from the upload");
    }
    let took = started.elapsed();
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    sampler.join().unwrap();
    let peak = peak.load(std::sync::atomic::Ordering::Relaxed);
    let grew = peak.saturating_sub(before);
    eprintln!(
        "64 pipelined GET ATTACHMENT of 16 MiB: 1 GiB sent in {took:?}, server RSS \
         {before} KiB before, peak {peak} KiB (+{grew} KiB)"
    );
    assert!(grew < 32 * 1024, "server RSS grew by {grew} KiB");
    // The connection is still in step.
    drop(reader);
    assert!(c.one("HELLO").starts_with("SERVER "));
}

#[test]
fn a_slow_but_steady_reader_is_not_cut_off_while_a_stopped_one_is() {
    let server = Server::start_with("[limits]\nwrite_timeout_secs = 1\n");
    let mut admin = admin_with_issue(&server);
    let data = pattern(8 << 20, 5);
    let id = upload(&mut admin, &data);
    // Small receive buffers so the server waits on this reader from the start.
    let connect = || {
        use socket2::{Domain, Socket, Type};
        let s = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
        s.set_recv_buffer_size(32 * 1024).unwrap();
        s.connect(&server.addr.into()).unwrap();
        let s: TcpStream = s.into();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut c = Client::from_stream(s.try_clone().unwrap());
        c.login("admin", support::ADMIN_PASSWORD);
        (c, s)
    };
    // Steady: 32 KiB every 16 ms, about 2 MB/s, so 8 MiB take about 4 s: far longer than
    // the write limit in all, with the server blocked on the socket most of that time.
    let (_c, steady) = connect();
    (&steady)
        .write_all(format!("GET ATTACHMENT {id}\n").as_bytes())
        .unwrap();
    let started = Instant::now();
    let mut r = BufReader::with_capacity(32 * 1024, &steady);
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    assert_eq!(line, format!("DATA {}\r\n", data.len()));
    let mut got = Vec::with_capacity(data.len());
    let mut piece = vec![0; 32 * 1024];
    while got.len() < data.len() {
        let want = piece.len().min(data.len() - got.len());
        r.read_exact(&mut piece[..want]).unwrap();
        got.extend_from_slice(&piece[..want]);
        std::thread::sleep(Duration::from_millis(16));
    }
    let took = started.elapsed();
    assert!(got == data, "the slow reader got other bytes");
    let mut end = [0; 4];
    r.read_exact(&mut end).unwrap();
    assert_eq!(&end, b"\r\n\r\n");
    assert!(
        took > Duration::from_secs(2),
        "read too fast to test: {took:?}"
    );
    assert!(!server.log().contains("write timeout"), "{}", server.log());
    // Stopped: reads 64 KiB, then nothing for 3 s; the server gives up within about a
    // second of the stall, so what is left to read ends before the attachment does.
    let (_c, stopped) = connect();
    (&stopped)
        .write_all(format!("GET ATTACHMENT {id}\n").as_bytes())
        .unwrap();
    let mut r = BufReader::with_capacity(32 * 1024, &stopped);
    let mut first = vec![0; 64 * 1024];
    r.read_exact(&mut first).unwrap();
    let stalled_at = Instant::now();
    while !server.log().contains("write timeout") {
        assert!(
            stalled_at.elapsed() < Duration::from_secs(5),
            "not cut off: {}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let cut_after = stalled_at.elapsed();
    let mut rest = Vec::new();
    r.read_to_end(&mut rest).unwrap();
    let total = first.len() + rest.len();
    assert!(
        total < data.len(),
        "the stopped reader got all {total} bytes"
    );
    eprintln!(
        "write limit 1 s: a 2 MB/s reader got 8 MiB in {took:?}; a stopped reader was cut \
         off {cut_after:?} after it stopped, having got {total} bytes"
    );
    assert!(cut_after < Duration::from_secs(3), "{cut_after:?}");
}
