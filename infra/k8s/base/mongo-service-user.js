// The service's own MongoDB user, created once, on a MongoDB's first start (an empty volume):
// the official image's entrypoint runs /docker-entrypoint-initdb.d/*.js in mongosh as the
// root user, after creating it. Each <service>-mongo StatefulSet sets GITTIX_DB (its owner's
// database, docs/ARCHITECTURE.md), GITTIX_DB_USER and GITTIX_DB_PASSWORD (from its Secret).
// The user is defined in that database (the service's authSource) and may read and write it
// alone: no other database, no user or cluster administration. make test checks this role
// list and the StatefulSets' values.
const database = process.env.GITTIX_DB;
const user = process.env.GITTIX_DB_USER;
const password = process.env.GITTIX_DB_PASSWORD;
if (!database || !user || !password) {
  throw new Error("GITTIX_DB, GITTIX_DB_USER and GITTIX_DB_PASSWORD must be set");
}
db.getSiblingDB(database).createUser({
  user: user,
  pwd: password,
  roles: [{ role: "readWrite", db: database }],
});
