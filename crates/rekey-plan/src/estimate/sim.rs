//! The discrete-event simulation behind [`super::estimate`]: the engine's scheduler, its
//! batching and the providers' rate limits, replayed over a plan.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap, VecDeque};
use std::time::Duration;

use rekey_spec::action::{Effect, Phase};

use super::{Ask, DOMINANT, Estimate, Limits, Pole, Reason, StepCost};
use crate::{Plan, PlannedStep, Strategy};

/// Simulated time, in nanoseconds: exact for the tests' whole seconds.
type Ns = u64;

/// Capped at 2^60 ns (36 years), so sums of a few never overflow.
fn ns(d: Duration) -> Ns {
    u64::try_from(d.as_nanos()).map_or(1 << 60, |n| n.min(1 << 60))
}

const NONE: u32 = u32::MAX;

/// When a step passed each stage, in this order.
#[derive(Debug, Clone, Copy, Default)]
struct Rec {
    /// Every step it waits for is done.
    ready: Ns,
    /// A person answered (= `ready` unless it waits for one).
    answered: Ns,
    /// Its new value propagated.
    settled: Ns,
    /// Its request exists (a batch's once gathered).
    created: Ns,
    /// Its request holds every token it waits out: in the slot queue.
    queued: Ns,
    /// Its request holds its slots.
    started: Ns,
    /// Its request holds every token it waits for in the call.
    working: Ns,
    end: Ns,
    job: u32,
}

/// One request: a step, or a batch of steps of one action.
struct Job {
    members: Vec<u32>,
    provider: usize,
    /// Manual steps call no provider and take no slot.
    slotted: bool,
    work: Ns,
    /// The limits whose token it waited for longest, outside and inside the call.
    paced_by: Option<usize>,
    held_by: Option<usize>,
}

struct Bucket {
    interval: Ns,
    burst: u64,
    /// The GCRA's theoretical arrival time.
    tat: Ns,
    holds: bool,
}

impl Bucket {
    fn earliest(&self, now: Ns) -> Ns {
        now.max(
            self.tat
                .saturating_sub(self.interval.saturating_mul(self.burst - 1)),
        )
    }
}

struct Group {
    members: Vec<u32>,
    first: Ns,
    last: Ns,
}

/// The steps of one batched (provider, action), as `rekey-engine/src/batch.rs` gathers them.
struct BatchKey {
    limit: usize,
    /// Steps not joined yet.
    to_come: usize,
    /// Steps not joined yet whose credential has a step in flight (they may join soon).
    coming: usize,
    group: Option<Group>,
}

struct Provider {
    free: usize,
    /// (height, earliest member, job): longest remaining chain first, then plan order.
    queue: BinaryHeap<(u32, Reverse<u32>, u32)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Ev {
    Done(u32),
    Answered(u32),
    Settled(u32),
    Tokened(u32),
    RoundOver,
    Deadline,
}

pub(super) struct Sim<'a> {
    plan: &'a Plan,
    limits: &'a Limits,
    n: usize,
    work: Vec<Ns>,
    propagation: Vec<Ns>,
    human: Vec<Ns>,
    height: Vec<u32>,
    /// Incoming and outgoing edges, CSR.
    pred_at: Vec<u32>,
    preds: Vec<u32>,
    succ_at: Vec<u32>,
    succs: Vec<u32>,
    waiting_on: Vec<u32>,
    provider_of: Vec<usize>,
    provider_names: Vec<std::borrow::Cow<'a, str>>,
    providers: Vec<Provider>,
    global_free: usize,
    bucket_names: Vec<&'a str>,
    buckets: Vec<Bucket>,
    /// The limits each step spends.
    spends: Vec<Vec<usize>>,
    batch_of: Vec<u32>,
    keys: Vec<BatchKey>,
    joined: Vec<bool>,
    /// Per credential: its batched steps (to count those that may join soon).
    cred_batched: Vec<Vec<u32>>,
    /// Per credential: its steps propagating or in a request not done yet.
    cred_busy: Vec<u32>,
    /// Steps propagating and requests not done: the engine's tasks and ready steps.
    busy: usize,
    jobs: Vec<Job>,
    rec: Vec<Rec>,
    now: Ns,
    seq: u64,
    events: BinaryHeap<Reverse<(Ns, u64, Ev)>>,
    people_free: usize,
    asked: VecDeque<u32>,
    /// Manual steps waiting for the run to pause, and those of the round being answered.
    paused: Vec<u32>,
    round: Vec<u32>,
}

impl<'a> Sim<'a> {
    pub(super) fn new(
        plan: &'a Plan,
        cost: &dyn Fn(&PlannedStep) -> StepCost,
        limits: &'a Limits,
    ) -> Self {
        let n = plan.steps.len();
        let (mut work, mut propagation, mut human) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        for s in &plan.steps {
            let c = cost(s);
            work.push(ns(c.work));
            propagation.push(ns(c.propagation));
            human.push(ns(c.human));
        }
        let csr = |key: fn(&crate::Edge) -> (u32, u32)| {
            let mut at = vec![0u32; n + 1];
            for e in &plan.edges {
                at[key(e).0 as usize + 1] += 1;
            }
            for i in 0..n {
                at[i + 1] += at[i];
            }
            let mut fill = at.clone();
            let mut out = vec![0u32; plan.edges.len()];
            for e in &plan.edges {
                let (k, v) = key(e);
                out[fill[k as usize] as usize] = v;
                fill[k as usize] += 1;
            }
            (at, out)
        };
        let (pred_at, preds) = csr(|e| (e.to, e.from));
        let (succ_at, succs) = csr(|e| (e.from, e.to));
        // Steps come in a topological order: heights from the end, like the engine's.
        let mut height = vec![1u32; n];
        for i in (0..n).rev() {
            let below = succs[succ_at[i] as usize..succ_at[i + 1] as usize]
                .iter()
                .map(|&d| height[d as usize])
                .max()
                .unwrap_or(0);
            height[i] = 1 + below;
        }
        let waiting_on = (0..n).map(|i| pred_at[i + 1] - pred_at[i]).collect();

        // Slot pools as the engine keys them (a consumer step's is its consumer type's).
        let mut provider_ix: HashMap<std::borrow::Cow<'_, str>, usize> = HashMap::new();
        let mut provider_names: Vec<std::borrow::Cow<'_, str>> = Vec::new();
        let provider_of = plan
            .steps
            .iter()
            .map(|s| {
                *provider_ix.entry(s.slot_pool()).or_insert_with_key(|k| {
                    provider_names.push(k.clone());
                    provider_names.len() - 1
                })
            })
            .collect();
        let providers = provider_names
            .iter()
            .map(|p| Provider {
                free: limits
                    .provider_slots
                    .get(p.as_ref())
                    .map_or(limits.per_provider, |&c| c.min(limits.per_provider))
                    .max(1),
                queue: BinaryHeap::new(),
            })
            .collect();

        // action → (consumer type or any, limit)
        let mut spenders: HashMap<&str, Vec<(Option<&str>, usize)>> = HashMap::new();
        let mut bucket_names = Vec::new();
        let mut buckets = Vec::new();
        for (name, r) in &limits.rates {
            let b = buckets.len();
            bucket_names.push(name.as_str());
            buckets.push(Bucket {
                interval: 3_600_000_000_000 / u64::from(r.per_hour.max(1)),
                burst: u64::from(r.burst.max(1)),
                tat: 0,
                holds: r.holds_slots,
            });
            for key in &r.spent_by {
                let (action, consumer) = match key.split_once(':') {
                    Some((a, c)) => (a, Some(c)),
                    None => (key.as_str(), None),
                };
                spenders.entry(action).or_default().push((consumer, b));
            }
        }
        let spends = plan
            .steps
            .iter()
            .map(|s| {
                let Some(list) = spenders.get(s.action.as_str()) else {
                    return Vec::new();
                };
                let ty = s.target.as_ref().map(rekey_spec::Consumer::type_name);
                list.iter()
                    .filter(|(c, _)| c.is_none() || *c == ty)
                    .map(|&(_, b)| b)
                    .collect()
            })
            .collect();

        let mut key_ix: HashMap<(&str, &str), u32> = HashMap::new();
        let mut keys: Vec<BatchKey> = Vec::new();
        let mut batch_of = vec![NONE; n];
        let mut cred_batched = vec![Vec::new(); plan.credentials.len()];
        for (i, s) in plan.steps.iter().enumerate() {
            let Some(&limit) = limits.batches.get(&s.action).filter(|&&l| l > 1) else {
                continue;
            };
            if s.effect == Effect::Human {
                continue;
            }
            let k = *key_ix
                .entry((s.provider.as_str(), s.action.as_str()))
                .or_insert_with(|| {
                    keys.push(BatchKey {
                        limit,
                        to_come: 0,
                        coming: 0,
                        group: None,
                    });
                    u32::try_from(keys.len() - 1).expect("few actions")
                });
            keys[k as usize].to_come += 1;
            batch_of[i] = k;
            cred_batched[s.credential as usize].push(u32::try_from(i).expect("< 2^32 steps"));
        }

        Self {
            plan,
            limits,
            n,
            work,
            propagation,
            human,
            height,
            pred_at,
            preds,
            succ_at,
            succs,
            waiting_on,
            provider_of,
            provider_names,
            providers,
            global_free: limits.concurrency.max(1),
            bucket_names,
            buckets,
            spends,
            batch_of,
            keys,
            joined: vec![false; n],
            cred_batched,
            cred_busy: vec![0; plan.credentials.len()],
            busy: 0,
            jobs: Vec::with_capacity(n),
            rec: vec![Rec::default(); n],
            now: 0,
            seq: 0,
            events: BinaryHeap::with_capacity(n),
            people_free: limits.operators.people.unwrap_or(usize::MAX).max(1),
            asked: VecDeque::new(),
            paused: Vec::new(),
            round: Vec::new(),
        }
    }

    fn at(&mut self, t: Ns, ev: Ev) {
        self.seq += 1;
        self.events.push(Reverse((t, self.seq, ev)));
    }

    pub(super) fn run(&mut self) {
        for i in 0..self.n {
            if self.waiting_on[i] == 0 {
                self.ready(u32::try_from(i).expect("< 2^32 steps"));
            }
        }
        loop {
            self.settle();
            let Some(Reverse((t, _, ev))) = self.events.pop() else {
                break;
            };
            self.now = t;
            self.handle(ev);
            // Everything due at this instant first, so the picks see every ready step.
            while let Some(Reverse((t, _, _))) = self.events.peek()
                && *t == self.now
            {
                let Some(Reverse((_, _, ev))) = self.events.pop() else {
                    break;
                };
                self.handle(ev);
            }
        }
    }

    fn handle(&mut self, ev: Ev) {
        match ev {
            Ev::Done(j) => self.done(j),
            Ev::Answered(i) => {
                if let Some(next) = self.asked.pop_front() {
                    self.at(self.now + self.human[next as usize], Ev::Answered(next));
                } else {
                    self.people_free = self.people_free.saturating_add(1);
                }
                self.answered(i);
            }
            Ev::Settled(i) => {
                self.settled(i);
                self.busy_cred(i, false);
            }
            Ev::Tokened(j) => self.enqueue(j),
            Ev::RoundOver => {
                for i in std::mem::take(&mut self.round) {
                    self.answered(i);
                }
            }
            // Batches are checked after every instant anyway.
            Ev::Deadline => {}
        }
    }

    /// What happens without time passing: requests take free slots, due batches go, and a
    /// run with nothing left to do but questions pauses for a person.
    fn settle(&mut self) {
        loop {
            self.dispatch();
            if !self.send_batches() {
                break;
            }
        }
        if self.busy == 0
            && self.round.is_empty()
            && !self.paused.is_empty()
            && self.keys.iter().all(|k| k.group.is_none())
        {
            self.start_round();
        }
    }

    /// Step `i` may go: every step it waits for is done.
    fn ready(&mut self, i: u32) {
        let iu = i as usize;
        self.rec[iu].ready = self.now;
        if self.human[iu] == 0 {
            return self.answered(i);
        }
        match self.limits.operators.ask {
            Ask::WhenPaused => self.paused.push(i),
            Ask::AtOnce if self.people_free > 0 => {
                self.people_free -= 1;
                self.at(self.now + self.human[iu], Ev::Answered(i));
            }
            Ask::AtOnce => self.asked.push_back(i),
        }
    }

    /// The run paused: a person answers every waiting step in plan order, and the run goes on
    /// once all are answered.
    fn start_round(&mut self) {
        let mut round = std::mem::take(&mut self.paused);
        round.sort_unstable();
        let people = self.limits.operators.people.unwrap_or(round.len()).max(1);
        let mut free: BinaryHeap<Reverse<Ns>> = (0..people.min(round.len()))
            .map(|_| Reverse(self.now))
            .collect();
        let mut end = self.now;
        for &i in &round {
            let Reverse(t) = free.pop().expect("one person at least");
            let t = t + self.human[i as usize];
            end = end.max(t);
            free.push(Reverse(t));
        }
        self.round = round;
        self.at(end, Ev::RoundOver);
    }

    fn answered(&mut self, i: u32) {
        let iu = i as usize;
        self.rec[iu].answered = self.now;
        if self.propagation[iu] == 0 {
            return self.settled(i);
        }
        self.busy_cred(i, true);
        self.at(self.now + self.propagation[iu], Ev::Settled(i));
    }

    fn settled(&mut self, i: u32) {
        let iu = i as usize;
        self.rec[iu].settled = self.now;
        let k = self.batch_of[iu];
        if k == NONE {
            return self.create(vec![i]);
        }
        self.joined[iu] = true;
        let c = self.plan.steps[iu].credential as usize;
        let (window, max_wait) = (ns(self.limits.batch_window), ns(self.limits.batch_max_wait));
        let key = &mut self.keys[k as usize];
        key.to_come -= 1;
        if self.cred_busy[c] > 0 {
            key.coming -= 1;
        }
        let now = self.now;
        let g = key.group.get_or_insert(Group {
            members: Vec::new(),
            first: now,
            last: now,
        });
        g.members.push(i);
        g.last = now;
        let deadline = (now + window).min(g.first + max_wait);
        self.at(deadline, Ev::Deadline);
    }

    /// A step of credential `c` starts (`on`) or stops being in flight; its batched steps not
    /// gathered yet may join soon while one is.
    fn busy_cred(&mut self, i: u32, on: bool) {
        let c = self.plan.steps[i as usize].credential as usize;
        if on {
            self.busy += 1;
            self.cred_busy[c] += 1;
        } else {
            self.busy -= 1;
            self.cred_busy[c] -= 1;
        }
        let edge = u32::from(on);
        if self.cred_busy[c] != edge || self.cred_batched[c].is_empty() {
            return;
        }
        for &s in &self.cred_batched[c] {
            if !self.joined[s as usize] {
                let key = &mut self.keys[self.batch_of[s as usize] as usize];
                if on {
                    key.coming += 1;
                } else {
                    key.coming -= 1;
                }
            }
        }
    }

    /// Sends the gathered batches that are due (`rekey-engine/src/batch.rs` `Gathering::due`):
    /// full, holding every step of the action still to come, waiting since `batch_max_wait`,
    /// the run idle, or quiet for `batch_window` with nothing on its way.
    fn send_batches(&mut self) -> bool {
        let (window, max_wait) = (ns(self.limits.batch_window), ns(self.limits.batch_max_wait));
        let idle = self.busy == 0;
        let mut sent = false;
        for k in 0..self.keys.len() {
            loop {
                let now = self.now;
                let key = &mut self.keys[k];
                let Some(g) = key.group.as_mut() else {
                    break;
                };
                let due = idle
                    || key.to_come == 0
                    || g.members.len() >= key.limit
                    || now >= g.first + max_wait
                    || (now >= g.last + window && key.coming == 0);
                if !due {
                    if now >= g.last + window {
                        // Quiet, but a step that could join is on its way: wait again.
                        g.last = now;
                        let deadline = (now + window).min(g.first + max_wait);
                        self.at(deadline, Ev::Deadline);
                    }
                    break;
                }
                let members = if g.members.len() <= key.limit {
                    key.group.take().map(|g| g.members).unwrap_or_default()
                } else {
                    let rest = g.members.split_off(key.limit);
                    std::mem::replace(&mut g.members, rest)
                };
                self.create(members);
                sent = true;
            }
        }
        sent
    }

    /// One request for `members` (one step, or a batch of one action).
    fn create(&mut self, members: Vec<u32>) {
        let j = u32::try_from(self.jobs.len()).expect("< 2^32 requests");
        let first = members[0] as usize;
        let work = members
            .iter()
            .map(|&i| self.work[i as usize])
            .max()
            .unwrap_or(0);
        for &i in &members {
            self.rec[i as usize].created = self.now;
            self.rec[i as usize].job = j;
            self.busy_cred(i, true);
        }
        let (at, paced_by) = self.take_tokens(first, false);
        self.jobs.push(Job {
            members,
            provider: self.provider_of[first],
            slotted: self.plan.steps[first].effect != Effect::Human,
            work,
            paced_by,
            held_by: None,
        });
        if at > self.now {
            self.at(at, Ev::Tokened(j));
        } else {
            self.enqueue(j);
        }
    }

    /// Takes one token of every limit step `i` spends that waits in the call (`held`) or
    /// outside it: when the request may go, and the limit that made it wait longest.
    fn take_tokens(&mut self, i: usize, held: bool) -> (Ns, Option<usize>) {
        let mut at = self.now;
        let mut by = None;
        for &b in &self.spends[i] {
            if self.buckets[b].holds == held {
                let t = self.buckets[b].earliest(self.now);
                if t > at {
                    at = t;
                    by = Some(b);
                }
            }
        }
        for &b in &self.spends[i] {
            let bucket = &mut self.buckets[b];
            if bucket.holds == held {
                bucket.tat = bucket.tat.max(at) + bucket.interval;
            }
        }
        (at, by)
    }

    fn enqueue(&mut self, j: u32) {
        let job = &self.jobs[j as usize];
        let mut height = 0;
        let mut first = u32::MAX;
        for &i in &job.members {
            self.rec[i as usize].queued = self.now;
            height = height.max(self.height[i as usize]);
            first = first.min(i);
        }
        if job.slotted {
            self.providers[job.provider]
                .queue
                .push((height, Reverse(first), j));
        } else {
            self.start(j);
        }
    }

    /// Starts queued requests while slots are free: the best ready one among the providers
    /// with a free slot.
    fn dispatch(&mut self) {
        while self.global_free > 0 {
            let best = self
                .providers
                .iter()
                .enumerate()
                .filter(|(_, p)| p.free > 0)
                .filter_map(|(k, p)| p.queue.peek().map(|&(h, f, _)| ((h, f), k)))
                .max();
            let Some((_, k)) = best else {
                break;
            };
            let (_, _, j) = self.providers[k].queue.pop().expect("peeked");
            self.global_free -= 1;
            self.providers[k].free -= 1;
            self.start(j);
        }
    }

    fn start(&mut self, j: u32) {
        let first = self.jobs[j as usize].members[0] as usize;
        let (at, held_by) = self.take_tokens(first, true);
        let job = &mut self.jobs[j as usize];
        job.held_by = held_by;
        for &i in &job.members {
            self.rec[i as usize].started = self.now;
            self.rec[i as usize].working = at;
        }
        let end = at + job.work;
        self.at(end, Ev::Done(j));
    }

    fn done(&mut self, j: u32) {
        let job = &self.jobs[j as usize];
        if job.slotted {
            self.global_free += 1;
            self.providers[job.provider].free += 1;
        }
        let members = std::mem::take(&mut self.jobs[j as usize].members);
        for &i in &members {
            self.rec[i as usize].end = self.now;
            self.busy_cred(i, false);
        }
        for &i in &members {
            let iu = i as usize;
            for k in self.succ_at[iu] as usize..self.succ_at[iu + 1] as usize {
                let d = self.succs[k];
                self.waiting_on[d as usize] -= 1;
                if self.waiting_on[d as usize] == 0 {
                    self.ready(d);
                }
            }
        }
        self.jobs[j as usize].members = members;
    }

    pub(super) fn answer(&self) -> Estimate {
        let plan = self.plan;
        let end = |i: usize| Duration::from_nanos(self.rec[i].end);
        let latest = |f: &dyn Fn(&PlannedStep) -> bool| {
            (0..self.n).filter(|&i| f(&plan.steps[i])).map(end).max()
        };
        let disabled_after = latest(&|s| {
            s.phase == Phase::Revoke
                && plan.credentials[s.credential as usize].strategy == Strategy::RevokeFirst
        });
        let replaced_after = latest(&|s| s.phase == Phase::Verify);
        let cleaned_after = latest(&|_| true).unwrap_or_default();

        let mut finish: Vec<(Ns, usize)> = plan
            .credentials
            .iter()
            .enumerate()
            .filter_map(|(c, pc)| {
                pc.steps
                    .iter()
                    .map(|&i| self.rec[i as usize].end)
                    .max()
                    .map(|e| (e, c))
            })
            .collect();
        finish.sort_unstable_by_key(|&(e, c)| (Reverse(e), c));
        let dominant: Vec<Pole> = finish
            .iter()
            .take(DOMINANT)
            .map(|&(_, c)| self.pole(c))
            .collect();
        Estimate {
            disabled_after,
            replaced_after,
            cleaned_after,
            long_pole: dominant.first().cloned(),
            dominant,
            steps: self.n,
            credentials: plan.credentials.len(),
            requests: self.jobs.iter().filter(|j| j.slotted).count(),
        }
    }

    /// Why credential `c` finishes when it does: the path back from its last step, each
    /// step's predecessor being the one that finished last (the one it was ready after).
    fn pole(&self, cred: usize) -> Pole {
        let plan = self.plan;
        let pc = &plan.credentials[cred];
        let last = pc
            .steps
            .iter()
            .copied()
            .max_by_key(|&i| (self.rec[i as usize].end, Reverse(i)))
            .expect("a credential with steps") as usize;
        let dur = Duration::from_nanos;
        // Each with its weight: a wait's length, a helper's part of the path.
        let mut reasons: Vec<(Ns, Reason)> = Vec::new();
        let mut helpers: Vec<u32> = Vec::new();
        let mut rated: BTreeMap<usize, Ns> = BTreeMap::new();
        let mut queued: BTreeMap<usize, Ns> = BTreeMap::new();
        let (mut work, mut steps) = (0, 0);
        let mut at = last;
        loop {
            let r = &self.rec[at];
            let step = &plan.steps[at];
            let job = &self.jobs[r.job as usize];
            steps += 1;
            work += r.end - r.working;
            // Walking back, a helper's first step met is its last on the path.
            if step.credential as usize != cred && !helpers.contains(&step.credential) {
                helpers.push(step.credential);
                reasons.push((
                    r.end,
                    Reason::Helper {
                        helper: plan.credentials[step.credential as usize].id.clone(),
                        until: dur(r.end),
                    },
                ));
            }
            if r.answered > r.ready {
                let wait = r.answered - r.ready;
                let step = step.id.clone();
                reasons.push((
                    wait,
                    Reason::Human {
                        step,
                        wait: dur(wait),
                    },
                ));
            }
            if r.settled > r.answered {
                let wait = r.settled - r.answered;
                let step = step.id.clone();
                reasons.push((
                    wait,
                    Reason::Propagation {
                        step,
                        wait: dur(wait),
                    },
                ));
            }
            *queued.entry(job.provider).or_default() +=
                (r.created - r.settled) + (r.started - r.queued);
            for (by, waited) in [
                (job.paced_by, r.queued - r.created),
                (job.held_by, r.working - r.started),
            ] {
                if let Some(b) = by
                    && waited > 0
                {
                    *rated.entry(b).or_default() += waited;
                }
            }
            let before = (self.pred_at[at] as usize..self.pred_at[at + 1] as usize)
                .map(|k| self.preds[k] as usize)
                .max_by_key(|&p| (self.rec[p].end, Reverse(p)));
            match before {
                Some(p) => at = p,
                None => break,
            }
        }
        for (b, waited) in rated {
            let limit = self.bucket_names[b].to_owned();
            reasons.push((
                waited,
                Reason::RateLimited {
                    limit,
                    waited: dur(waited),
                },
            ));
        }
        for (p, waited) in queued {
            // Less than a second of queueing is the engine's ordinary bustle.
            if waited >= 1_000_000_000 {
                let provider = self.provider_names[p].clone().into_owned();
                reasons.push((
                    waited,
                    Reason::Queued {
                        provider,
                        waited: dur(waited),
                    },
                ));
            }
        }
        // Stable: a helper before the waits inside it.
        reasons.sort_by_key(|(w, _)| Reverse(*w));
        let mut reasons: Vec<Reason> = reasons.into_iter().map(|(_, r)| r).collect();
        reasons.push(Reason::Chain {
            steps,
            work: dur(work),
        });
        Pole {
            credential: pc.id.clone(),
            kind: pc.kind,
            done_after: dur(self.rec[last].end),
            reasons,
        }
    }
}
