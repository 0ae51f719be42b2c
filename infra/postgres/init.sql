-- Each service owns its own database.
CREATE DATABASE bm_intake;
CREATE DATABASE bm_verification;
CREATE DATABASE bm_bridge;
CREATE DATABASE bm_meldkamer;
