module github.com/dcsjobs/dcsjobs

go 1.26.0
