// Command storebench measures a MongoDB-compatible server the way GitTix uses it:
// atomicity of read-modify-writes across many connections (version-checked updates, claims,
// $push) and the speed of the listing query and of find by _id. It prints figures and
// asserts nothing; the store contract test (crates/common/tests/mongo_contract) asserts.
//
//	go run ./storebench -url mongodb://127.0.0.1:27318 [-docs 10000] [-seconds 3] [-only races|reads]
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/bson/primitive"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"
)

func main() {
	url := flag.String("url", "mongodb://127.0.0.1:27017", "server")
	docs := flag.Int("docs", 10000, "documents in the listing collection")
	seconds := flag.Float64("seconds", 3, "duration of each throughput measurement")
	conns := flag.Int("connections", 16, "connections (and concurrent callers) for the races and throughput")
	only := flag.String("only", "", "races or reads; both when empty")
	dbName := flag.String("db", fmt.Sprintf("storebench_%d", time.Now().UnixNano()), "database (dropped at the end)")
	flag.Parse()

	ctx := context.Background()
	client, err := mongo.Connect(ctx, options.Client().ApplyURI(*url).
		SetMaxPoolSize(uint64(*conns)).SetMinPoolSize(uint64(*conns)))
	if err != nil {
		log.Fatal(err)
	}
	defer client.Disconnect(ctx)
	db := client.Database(*dbName)
	defer db.Drop(ctx)

	var info bson.M
	if err := client.Database("admin").RunCommand(ctx, bson.D{{Key: "buildInfo", Value: 1}}).Decode(&info); err != nil {
		log.Fatal(err)
	}
	server := fmt.Sprintf("MongoDB %v", info["version"])
	if v, ok := info["ferretdbVersion"]; ok {
		server = fmt.Sprintf("FerretDB %v", v)
		if v == "unknown" {
			server = "FerretDB 1.24 (embedded: tools/ferretdb)"
		}
		if serialized, _ := info["gittixWritesSerialized"].(bool); serialized {
			server += ", writes serialized by the front"
		} else {
			server += ", alone (writes not serialized)"
		}
	}
	fmt.Printf("server: %s at %s, %d connections\n", server, *url, *conns)

	if *only == "" || *only == "races" {
		races(ctx, db, *conns)
	}
	if *only == "" || *only == "reads" {
		reads(ctx, db, *docs, *seconds, *conns)
	}
}

func parallel(n int, f func(i int)) time.Duration {
	start := time.Now()
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) { defer wg.Done(); f(i) }(i)
	}
	wg.Wait()
	return time.Since(start)
}

func races(ctx context.Context, db *mongo.Database, conns int) {
	coll := db.Collection("races")

	// Version-checked updates: each writer reads the version and updates with it until it
	// wins once. Lost updates show as final version or events below the number of wins.
	writers := 50
	id := primitive.NewObjectID()
	must(coll.InsertOne(ctx, bson.M{"_id": id, "version": int64(0)}))
	var wins, conflicts atomic.Int64
	took := parallel(writers, func(i int) {
		for tries := 0; tries < 10000; tries++ {
			var cur struct{ Version int64 }
			if err := coll.FindOne(ctx, bson.M{"_id": id}).Decode(&cur); err != nil {
				log.Fatal(err)
			}
			res, err := coll.UpdateOne(ctx, bson.M{"_id": id, "version": cur.Version}, bson.M{
				"$inc":  bson.M{"version": 1},
				"$push": bson.M{"pendingEvents": bson.M{"id": fmt.Sprintf("w%d", i), "v": cur.Version + 1}},
			})
			if err != nil {
				log.Fatal(err)
			}
			if res.ModifiedCount == 1 {
				wins.Add(1)
				return
			}
			conflicts.Add(1)
		}
	})
	var final struct {
		Version       int64
		PendingEvents []bson.M
	}
	must0(coll.FindOne(ctx, bson.M{"_id": id}).Decode(&final))
	fmt.Printf("version-checked updates, %d writers: %d wins, %d retries, final version %d, %d events kept (lost %d) in %v\n",
		writers, wins.Load(), conflicts.Load(), final.Version, len(final.PendingEvents), wins.Load()-int64(len(final.PendingEvents)), took.Round(time.Millisecond))

	// Claims: 200 callers, one free document.
	id = primitive.NewObjectID()
	must(coll.InsertOne(ctx, bson.M{"_id": id, "reservedBy": nil, "reservedUntil": nil, "version": int64(0)}))
	var winners atomic.Int64
	lat := make([]time.Duration, 200)
	took = parallel(200, func(i int) {
		start := time.Now()
		now := time.Now()
		err := coll.FindOneAndUpdate(ctx,
			bson.M{"_id": id, "$or": bson.A{bson.M{"reservedBy": nil}, bson.M{"reservedUntil": bson.M{"$lt": now}}}},
			bson.M{"$set": bson.M{"reservedBy": fmt.Sprintf("buyer-%d", i), "reservedUntil": now.Add(15 * time.Minute)}, "$inc": bson.M{"version": 1}},
			options.FindOneAndUpdate().SetReturnDocument(options.After)).Err()
		lat[i] = time.Since(start)
		switch err {
		case nil:
			winners.Add(1)
		case mongo.ErrNoDocuments:
		default:
			log.Fatal(err)
		}
	})
	fmt.Printf("claims, 200 callers: %d winners in %v (p50 %v, p99 %v)\n", winners.Load(), took.Round(time.Millisecond),
		pct(lat, 50), pct(lat, 99))

	// $push: 200 pushes onto one document.
	id = primitive.NewObjectID()
	must(coll.InsertOne(ctx, bson.M{"_id": id}))
	took = parallel(200, func(i int) {
		must(coll.UpdateOne(ctx, bson.M{"_id": id}, bson.M{"$push": bson.M{"items": i}}))
	})
	var pushed struct{ Items []int }
	must0(coll.FindOne(ctx, bson.M{"_id": id}).Decode(&pushed))
	fmt.Printf("$push, 200 callers: %d of 200 kept in %v\n", len(pushed.Items), took.Round(time.Millisecond))
}

func reads(ctx context.Context, db *mongo.Database, n int, seconds float64, conns int) {
	coll := db.Collection("tickets")
	must(coll.Indexes().CreateOne(ctx, mongo.IndexModel{
		Keys:    bson.D{{Key: "orderId", Value: 1}, {Key: "_id", Value: 1}},
		Options: options.Index().SetName("available_newest_first"),
	}))
	ids := make([]primitive.ObjectID, 0, n)
	batch := make([]any, 0, 500)
	for i := 0; i < n; i++ {
		id := primitive.NewObjectID()
		ids = append(ids, id)
		d := bson.M{"_id": id, "title": fmt.Sprintf("ticket %d", i), "priceCents": int64(1000 + i), "userId": "u", "version": int64(0)}
		if i%3 == 0 {
			d["orderId"] = fmt.Sprintf("order-%d", i)
		}
		batch = append(batch, d)
		if len(batch) == cap(batch) || i == n-1 {
			must(coll.InsertMany(ctx, batch))
			batch = batch[:0]
		}
	}

	listing := func(int) {
		cur, err := coll.Find(ctx, bson.M{"orderId": nil},
			options.Find().SetSort(bson.D{{Key: "_id", Value: -1}}).SetLimit(21))
		if err != nil {
			log.Fatal(err)
		}
		var got []bson.M
		must0(cur.All(ctx, &got))
		if len(got) != 21 {
			log.Fatalf("listing returned %d", len(got))
		}
	}
	byID := func(i int) {
		var got bson.M
		must0(coll.FindOne(ctx, bson.M{"_id": ids[i%len(ids)]}).Decode(&got))
	}
	for _, c := range []int{1, conns} {
		rate, p50, p99 := throughput(seconds, c, listing)
		fmt.Printf("listing find({orderId: null}).sort({_id: -1}).limit(21) at %d docs, %d callers: %.0f/s, p50 %v, p99 %v\n",
			n, c, rate, p50, p99)
	}
	for _, c := range []int{1, conns} {
		rate, p50, p99 := throughput(seconds, c, byID)
		fmt.Printf("find by _id at %d docs, %d callers: %.0f/s, p50 %v, p99 %v\n", n, c, rate, p50, p99)
	}
}

// throughput runs f from callers goroutines for about seconds, bounded to 200,000 calls.
func throughput(seconds float64, callers int, f func(i int)) (float64, time.Duration, time.Duration) {
	deadline := time.Now().Add(time.Duration(seconds * float64(time.Second)))
	var mu sync.Mutex
	var lat []time.Duration
	took := parallel(callers, func(c int) {
		var mine []time.Duration
		for i := c; time.Now().Before(deadline) && len(mine) < 200000/callers; i += callers {
			start := time.Now()
			f(i)
			mine = append(mine, time.Since(start))
		}
		mu.Lock()
		lat = append(lat, mine...)
		mu.Unlock()
	})
	return float64(len(lat)) / took.Seconds(), pct(lat, 50), pct(lat, 99)
}

func pct(d []time.Duration, p int) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[(len(s)-1)*p/100].Round(10 * time.Microsecond)
}

func must[T any](_ T, err error) {
	if err != nil {
		log.Fatal(err)
	}
}

func must0(err error) {
	if err != nil {
		log.Fatal(err)
	}
}
