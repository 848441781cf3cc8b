import { strict as assert } from "assert";
import {
    type GraphGuest, SelectionError, cloneLanes, edgesOf, findCycle, indexGuests, lanePredecessor, readinessWaves, resolveSelection, topologicalOrder, transitiveReduction,
} from "../catalog/graph";

// The reference guests as the catalog describes them (consumes = the CA data flow).
const reference = indexGuests([
    { id: 900, kind: "lxc", dependsOn: [] },
    { id: 103, kind: "lxc", dependsOn: [], cloneFrom: 900 },
    { id: 101, kind: "lxc", dependsOn: [103], cloneFrom: 900, consumes: [103] },
    { id: 102, kind: "lxc", dependsOn: [103], cloneFrom: 900, consumes: [103] },
    { id: 9000, kind: "vm", dependsOn: [] },
    { id: 1001, kind: "vm", dependsOn: [102], cloneFrom: 9000, consumes: [103] },
    { id: 1002, kind: "vm", dependsOn: [1001], cloneFrom: 9000, consumes: [103] },
]);

/** Deterministic pseudo-random numbers (mulberry32), so a failing seed can be replayed. */
const rng = (seed: number) => () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
};

/** A random DAG: each guest may depend on / clone from guests with a smaller index. */
const randomDag = (seed: number, n: number): GraphGuest[] => {
    const r = rng(seed);
    const ids = Array.from({ length: n }, (_, i) => 100 + i * 7);
    return ids.map((id, i) => {
        const earlier = ids.slice(0, i);
        const pick = () => earlier[Math.floor(r() * earlier.length)];
        const deps = i === 0 ? [] : [...new Set(Array.from({ length: Math.floor(r() * 3) }, pick))];
        return { id, kind: r() < 0.5 ? "lxc" : "vm", dependsOn: deps, cloneFrom: i > 0 && r() < 0.4 ? pick() : undefined, consumes: i > 0 && r() < 0.2 ? [pick()] : [] };
    });
};

describe("graph", () => {
    it("gives the reference readiness waves", () => {
        assert.deepEqual(readinessWaves(reference, [...reference.keys()]), [[900, 9000], [103], [101, 102], [1001], [1002]]);
    });

    it("closes a selection over dependencies and clone sources, saying who pulled each guest in and why", () => {
        const s = resolveSelection(reference, [1002]);
        assert.deepEqual(s.requested, [1002]);
        assert.deepEqual(s.selected, [900, 9000, 103, 102, 1001, 1002]);
        assert.deepEqual(s.pulledIn, [
            { id: 9000, by: 1002, reason: "cloneFrom" },
            { id: 1001, by: 1002, reason: "dependsOn" },
            { id: 103, by: 1002, reason: "consumes" },
            { id: 102, by: 1001, reason: "dependsOn" },
            { id: 900, by: 103, reason: "cloneFrom" },
        ]);
    });

    it('selects the whole catalog with "all"', () => {
        assert.deepEqual(resolveSelection(reference, "all").selected, [900, 9000, 103, 101, 102, 1001, 1002]);
    });

    it("rejects an unknown ID in the selection and lists the known IDs", () => {
        assert.throws(() => resolveSelection(reference, [103, 104, 105]), (e: Error) =>
            e instanceof SelectionError &&
            e.message === "phoenix:guests names guests not in the catalog: 104, 105. Known guests: 101, 102, 103, 900, 1001, 1002, 9000.");
    });

    it("names a cycle", () => {
        const cyclic = indexGuests([...reference.values()].map((g) => (g.id === 103 ? { ...g, dependsOn: [101] } : g)));
        assert.deepEqual(findCycle(cyclic), [101, 103, 101]);
        assert.equal(findCycle(reference), undefined);
        assert.throws(() => readinessWaves(cyclic, [...cyclic.keys()]), /dependency cycle 101 -> 103 -> 101|dependency cycle 103 -> 101 -> 103/);
    });

    it("finds a cycle through a clone source", () => {
        const g = indexGuests([
            { id: 200, kind: "lxc", dependsOn: [], cloneFrom: 300 },
            { id: 300, kind: "lxc", dependsOn: [200] },
        ]);
        assert.deepEqual(findCycle(g), [200, 300, 200]);
    });

    it("puts clones of one source in one lane, in dependency order; everything else stays parallel", () => {
        const lanes = cloneLanes(reference, [...reference.keys()]);
        assert.deepEqual([...lanes], [[900, [103, 101, 102]], [9000, [1001, 1002]]]);
        assert.equal(lanePredecessor(lanes, 900, 103), undefined);
        assert.equal(lanePredecessor(lanes, 900, 101), 103);
        assert.equal(lanePredecessor(lanes, 900, 102), 101);
        assert.equal(lanePredecessor(lanes, 9000, 1002), 1001);
        assert.equal(lanePredecessor(lanes, undefined, 900), undefined);
    });

    it("reduces the reference edges to the seed document's graph", () => {
        const edges = [...reference.values()].flatMap(edgesOf);
        const reduced = transitiveReduction(edges).map((e) => `${e.from}->${e.to}`).sort();
        assert.deepEqual(reduced, ["1001->102", "1001->9000", "1002->1001", "101->103", "102->103", "103->900"]);
    });

    describe("on random DAGs (property test, 200 seeds)", () => {
        for (let seed = 1; seed <= 200; seed++) {
            const guests = randomDag(seed, 2 + (seed % 25));
            const index = indexGuests(guests);
            const ids = guests.map((g) => g.id);
            it(`seed ${seed}: waves, topological order and lanes respect every edge`, () => {
                assert.equal(findCycle(index), undefined);
                const wave = new Map(readinessWaves(index, ids).flatMap((w, i) => w.map((id) => [id, i] as const)));
                const order = topologicalOrder(index, ids);
                assert.deepEqual([...order].sort((a, b) => a - b), [...ids].sort((a, b) => a - b));
                for (const e of guests.flatMap(edgesOf)) {
                    assert.ok(wave.get(e.from)! > wave.get(e.to)!, `${e.from} must come after ${e.to}`);
                    assert.ok(order.indexOf(e.from) > order.indexOf(e.to));
                }
                for (const [source, lane] of cloneLanes(index, ids)) {
                    lane.forEach((id, i) => i > 0 && assert.ok(order.indexOf(lane[i - 1]) < order.indexOf(id)));
                    assert.ok(lane.every((id) => index.get(id)!.cloneFrom === source));
                }
                // A selection of any guest holds all it reaches.
                const last = ids[ids.length - 1];
                const sel = new Set(resolveSelection(index, [last]).selected);
                for (const id of sel) for (const e of edgesOf(index.get(id)!)) assert.ok(sel.has(e.to));
            });
            it(`seed ${seed}: any back edge makes a cycle that is found and named`, () => {
                const r = rng(seed * 31);
                const a = guests[Math.floor(r() * guests.length)];
                const reach = resolveSelection(index, [a.id]).selected.filter((id) => id !== a.id);
                if (reach.length === 0) return; // nothing below a: a back edge to itself is checked by the catalog
                const b = reach[Math.floor(r() * reach.length)];
                const cyclic = indexGuests(guests.map((g) => (g.id === b ? { ...g, dependsOn: [...g.dependsOn, a.id] } : g)));
                const cycle = findCycle(cyclic);
                assert.ok(cycle, "cycle not found");
                assert.equal(cycle[0], cycle[cycle.length - 1]);
                for (let i = 0; i + 1 < cycle.length; i++) {
                    assert.ok(edgesOf(cyclic.get(cycle[i])!).some((e) => e.to === cycle[i + 1]), `${cycle[i]} -> ${cycle[i + 1]} is not an edge`);
                }
            });
        }
    });
});
