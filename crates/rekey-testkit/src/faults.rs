//! Seeded fault injection shared by the in-process fakes (wiremock): a quarter of the faults
//! are reset connections (a [`Match`] mounted first, answered with an I/O error), the rest are
//! a 429 with the provider's reset header or a 502, half of those after the request took
//! effect (a lost answer). Reproducible for a seed.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use wiremock::matchers::any;
use wiremock::{Match, Mock, MockServer, Request, ResponseTemplate};

/// The dice of one fake.
#[derive(Debug, Default)]
pub struct Dice {
    rate: f64,
    rng: u64,
    /// Faults injected so far.
    pub injected: usize,
}

/// What a request gets instead of its answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// 429 with the provider's reset header.
    RateLimited,
    /// 502 before the request took effect.
    Before,
    /// 502 after it took effect: the answer is lost.
    After,
}

impl Dice {
    /// Faults at `rate` (0.2 = one request in five), reproducible for `seed`.
    pub fn set(&mut self, rate: f64, seed: u64) {
        self.rate = rate;
        self.rng = seed | 1;
    }

    fn next(&mut self) -> f64 {
        // xorshift64*: seeded, reproducible.
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        let bits = u32::try_from(x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 40).expect("24 bits");
        f64::from(bits) / f64::from(1u32 << 24)
    }

    fn reset(&mut self) -> bool {
        let hit = self.rate > 0.0 && self.next() < self.rate / 4.0;
        self.injected += usize::from(hit);
        hit
    }

    /// Given no reset, the other three quarters, so that the total is the rate.
    pub fn roll(&mut self) -> Option<Fault> {
        if self.rate <= 0.0 {
            return None;
        }
        let p = (self.rate * 0.75) / (1.0 - self.rate / 4.0);
        if self.next() >= p {
            return None;
        }
        self.injected += 1;
        let pick = self.next();
        Some(if pick < 0.5 {
            Fault::RateLimited
        } else if pick < 0.75 {
            Fault::Before
        } else {
            Fault::After
        })
    }
}

/// A fake's state that carries dice.
pub trait HasDice: Send + 'static {
    fn dice(&mut self) -> &mut Dice;
    /// Counts a request that reached the fake (a reset one included).
    fn count_request(&mut self) {}
    /// How long every answer waits.
    fn latency(&self) -> Duration {
        Duration::ZERO
    }
}

fn lock<S>(s: &Mutex<S>) -> MutexGuard<'_, S> {
    s.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Matches the requests whose connection is reset.
pub struct ResetFault<S>(pub Arc<Mutex<S>>);

impl<S: HasDice> Match for ResetFault<S> {
    fn matches(&self, _request: &Request) -> bool {
        let mut s = lock(&self.0);
        let hit = s.dice().reset();
        if hit {
            s.count_request();
        }
        hit
    }
}

/// Serves a fake on `server`: reset connections first, then every request either gets the
/// fake's answer for a rolled [`Fault`] (`fault`; a lost answer's request is routed first) or
/// its own answer (`route`), after the fake's latency.
pub async fn mount<S: HasDice>(
    server: &MockServer,
    state: &Arc<Mutex<S>>,
    fault: fn(Fault) -> ResponseTemplate,
    route: fn(&mut S, &Request) -> ResponseTemplate,
) {
    Mock::given(ResetFault(Arc::clone(state)))
        .respond_with_err(|_: &Request| {
            std::io::Error::new(std::io::ErrorKind::ConnectionReset, "injected reset")
        })
        .mount(server)
        .await;
    let s = Arc::clone(state);
    Mock::given(any())
        .respond_with(move |req: &Request| {
            let mut st = lock(&s);
            st.count_request();
            let latency = st.latency();
            let answer = match st.dice().roll() {
                None => route(&mut st, req),
                Some(Fault::After) => {
                    let _ = route(&mut st, req);
                    fault(Fault::After)
                }
                Some(f) => fault(f),
            };
            answer.set_delay(latency)
        })
        .mount(server)
        .await;
}
